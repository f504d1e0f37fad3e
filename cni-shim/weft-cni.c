/*
 * weft's CNI plugin (type `weft`): forwards the invocation (CNI_* environment + the network
 * configuration on stdin) to the agent's admin socket and prints the agent's result or the spec's
 * error JSON. A static C program rather than a Node script: a Node process costs ~34 ms of CPU to
 * start, which 50 concurrent ADDs on a small node cannot afford, and nodes need no Node.js at all.
 *
 * It stays thin: the agent validates the request (src/cni/request.ts) and decides every CNI code
 * except the ones the plugin needs on its own way there: CNI_COMMAND (4), reading stdin (5),
 * well-formed JSON (6), the socket and DEL-queue paths (7) and, for DEL, the container ID and
 * interface name that name the queue file (4). VERSION is answered here.
 *
 * Agent not listening: DEL is queued on disk for the agent to replay (src/cni/del-queue.ts reads
 * the same file name and content), STATUS reports 51, everything else 11.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* Keep in step with src/cni/request.ts and src/cni/errors.ts. */
#define LATEST_VERSION "1.1.0"
static const char *const SUPPORTED_VERSIONS[] = {"0.4.0", "1.0.0", "1.1.0"};
static const char *const COMMANDS[] = {"ADD", "DEL", "CHECK", "VERSION", "STATUS", "GC"};
#define DEFAULT_SOCKET "/run/weft/weft.sock"
#define DEFAULT_DEL_QUEUE_DIR "/var/lib/weft/cni-del-queue"
#define CNI_API_PREFIX "/v1/cni/"
#define DEL_SUFFIX ".del.json"
#define MAX_CONTAINER_ID 200
#define MAX_IFNAME 15

enum cni_code {
  INVALID_ENVIRONMENT = 4,
  IO_FAILURE = 5,
  DECODING_FAILURE = 6,
  INVALID_NETWORK_CONFIG = 7,
  TRY_AGAIN_LATER = 11,
  LIMITED_CONNECTIVITY = 51,
  UNKNOWN_FAILURE = 999,
};

/* Below the runtimes' own CNI timeouts, so the runtime sees our error rather than a kill. */
#define AGENT_TIMEOUT_MS 60000
/* A CNI config nests a few levels; this bounds the validator's recursion on hostile input. */
#define MAX_JSON_DEPTH 1000
/* How much of a garbled reply an error message quotes. */
#define QUOTED_REPLY_BYTES 200

/* ---- growable byte buffer ---------------------------------------------------------------- */

struct buf {
  char *data;
  size_t len;
  size_t cap;
};

static void die_oom(void);

/* Room for `extra` more bytes and the terminating NUL every buffer keeps. */
static void buf_reserve(struct buf *b, size_t extra) {
  if (b->data && extra < b->cap - b->len) return;
  if (extra > SIZE_MAX - b->len - 1) die_oom();
  size_t cap = b->cap ? b->cap : 256;
  while (cap - b->len < extra + 1) {
    if (cap > SIZE_MAX / 2) {
      cap = b->len + extra + 1;
      break;
    }
    cap *= 2;
  }
  char *data = realloc(b->data, cap);
  if (!data) die_oom();
  b->data = data;
  b->cap = cap;
}

static void buf_add(struct buf *b, const void *data, size_t n) {
  buf_reserve(b, n);
  if (n) memcpy(b->data + b->len, data, n);
  b->len += n;
  b->data[b->len] = '\0';
}

static void buf_str(struct buf *b, const char *s) { buf_add(b, s, strlen(s)); }

__attribute__((format(printf, 2, 3))) static void buf_printf(struct buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  buf_reserve(b, (size_t)n);
  va_start(ap, fmt);
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}

/* ---- UTF-8 and JSON output --------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if it is not one (RFC 3629). */
static size_t utf8_sequence(const unsigned char *s, size_t n) {
  unsigned char c = s[0];
  if (c < 0x80) return 1;
  size_t len;
  uint32_t cp;
  if (c >= 0xc2 && c <= 0xdf) {
    len = 2;
    cp = c & 0x1f;
  } else if (c >= 0xe0 && c <= 0xef) {
    len = 3;
    cp = c & 0x0f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    len = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (n < len) return 0;
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (s[i] & 0x3f);
  }
  if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff))) return 0;
  if (cp >= 0xd800 && cp <= 0xdfff) return 0;
  return len;
}

static void buf_utf8(struct buf *b, uint32_t cp) {
  char out[4];
  size_t n;
  if (cp < 0x80) {
    out[0] = (char)cp;
    n = 1;
  } else if (cp < 0x800) {
    out[0] = (char)(0xc0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3f));
    n = 2;
  } else if (cp < 0x10000) {
    out[0] = (char)(0xe0 | (cp >> 12));
    out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[2] = (char)(0x80 | (cp & 0x3f));
    n = 3;
  } else {
    out[0] = (char)(0xf0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    n = 4;
  }
  buf_add(b, out, n);
}

/* Appends s as a JSON string literal; invalid UTF-8 becomes U+FFFD, so the output always parses. */
static void buf_json_string(struct buf *b, const char *s, size_t n) {
  const unsigned char *u = (const unsigned char *)s;
  buf_add(b, "\"", 1);
  for (size_t i = 0; i < n;) {
    unsigned char c = u[i];
    if (c == '"' || c == '\\') {
      char esc[2] = {'\\', (char)c};
      buf_add(b, esc, 2);
      i++;
    } else if (c < 0x20) {
      static const char short_escapes[] = "btn\0fr";
      if (c >= '\b' && c <= '\r' && c != '\v')
        buf_printf(b, "\\%c", short_escapes[c - '\b']);
      else
        buf_printf(b, "\\u%04x", c);
      i++;
    } else {
      size_t len = utf8_sequence(u + i, n - i);
      if (len == 0) {
        buf_str(b, "\xef\xbf\xbd");
        i++;
      } else {
        buf_add(b, u + i, len);
        i += len;
      }
    }
  }
  buf_add(b, "\"", 1);
}

static void buf_json_cstring(struct buf *b, const char *s) { buf_json_string(b, s, strlen(s)); }

static int write_all(int fd, const char *data, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, data, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    data += w;
    n -= (size_t)w;
  }
  return 0;
}

/* ---- CNI output -------------------------------------------------------------------------- */

/* The version answers are in: the config's if we speak it, else the newest we speak. */
static const char *answer_version = LATEST_VERSION;

static void print_line(const char *data, size_t n) {
  struct buf out = {0};
  buf_add(&out, data, n);
  buf_add(&out, "\n", 1);
  (void)write_all(STDOUT_FILENO, out.data, out.len);
  free(out.data);
}

/* Prints the spec's error JSON and exits 1. `details` may be NULL. */
__attribute__((noreturn)) static void fail_with(int code, const char *msg, size_t msg_len,
                                                 const char *details, size_t details_len) {
  struct buf out = {0};
  buf_str(&out, "{\"cniVersion\":");
  buf_json_cstring(&out, answer_version);
  buf_printf(&out, ",\"code\":%d,\"msg\":", code);
  buf_json_string(&out, msg, msg_len);
  if (details) {
    buf_str(&out, ",\"details\":");
    buf_json_string(&out, details, details_len);
  }
  buf_add(&out, "}", 1);
  print_line(out.data, out.len);
  exit(1);
}

__attribute__((noreturn)) static void fail(int code, const char *msg, const char *details) {
  fail_with(code, msg, strlen(msg), details, details ? strlen(details) : 0);
}

__attribute__((noreturn, format(printf, 2, 3))) static void failf(int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  char *msg = malloc(n < 0 ? 1 : (size_t)n + 1);
  if (!msg) die_oom();
  va_start(ap, fmt);
  vsnprintf(msg, n < 0 ? 1 : (size_t)n + 1, fmt, ap);
  va_end(ap);
  fail(code, msg, NULL);
}

static void die_oom(void) {
  static const char msg[] = "{\"cniVersion\":\"" LATEST_VERSION
                            "\",\"code\":5,\"msg\":\"weft plugin: out of memory\"}\n";
  (void)write_all(STDOUT_FILENO, msg, sizeof msg - 1);
  _exit(1);
}

/* A string quoted as JSON, for messages that name a bad value (as JSON.stringify does). */
static const char *quoted(const char *s) {
  struct buf q = {0};
  buf_json_cstring(&q, s);
  return q.data;
}

/* ---- JSON validation --------------------------------------------------------------------- */

enum json_kind { JSON_NONE, JSON_STRING, JSON_NUMBER, JSON_OTHER };

/* A top-level member the caller wants: where its value is in the text (the last one wins, as in
 * JSON.parse). */
struct json_field {
  const char *key;
  enum json_kind kind;
  size_t start;
  size_t end;
};

struct json_parser {
  const unsigned char *s;
  size_t n;
  size_t pos;
  int depth;
  const char *error; /* set on the first error; pos is where */
  struct json_field *fields;
  size_t nfields;
  struct buf key;
};

static int json_error(struct json_parser *p, const char *message) {
  if (!p->error) p->error = message;
  return -1;
}

static void json_skip_space(struct json_parser *p) {
  while (p->pos < p->n) {
    unsigned char c = p->s[p->pos];
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
    p->pos++;
  }
}

static int hex_value(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static int json_hex4(struct json_parser *p, uint32_t *out) {
  if (p->n - p->pos < 4) return json_error(p, "incomplete \\u escape");
  uint32_t v = 0;
  for (int i = 0; i < 4; i++) {
    int h = hex_value(p->s[p->pos + (size_t)i]);
    if (h < 0) return json_error(p, "invalid \\u escape");
    v = (v << 4) | (uint32_t)h;
  }
  p->pos += 4;
  *out = v;
  return 0;
}

/* A string at pos (its opening quote); decoded into out when out is not NULL. */
static int json_string(struct json_parser *p, struct buf *out) {
  p->pos++;
  for (;;) {
    if (p->pos >= p->n) return json_error(p, "unterminated string");
    unsigned char c = p->s[p->pos];
    if (c == '"') {
      p->pos++;
      return 0;
    }
    if (c < 0x20) return json_error(p, "control character in a string");
    if (c == '\\') {
      if (++p->pos >= p->n) return json_error(p, "unterminated string");
      unsigned char e = p->s[p->pos++];
      const char *simple = strchr("\"\\/bfnrt", e);
      if (e != 0 && simple) {
        static const char decoded[] = "\"\\/\b\f\n\r\t";
        if (out) buf_add(out, &decoded[simple - "\"\\/bfnrt"], 1);
      } else if (e == 'u') {
        uint32_t cp;
        if (json_hex4(p, &cp) < 0) return -1;
        if (cp >= 0xd800 && cp <= 0xdbff && p->n - p->pos >= 6 && p->s[p->pos] == '\\' &&
            p->s[p->pos + 1] == 'u') {
          size_t at = p->pos;
          uint32_t low;
          p->pos += 2;
          if (json_hex4(p, &low) < 0) return -1;
          if (low >= 0xdc00 && low <= 0xdfff)
            cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
          else
            p->pos = at; /* a lone high surrogate; the next escape stands on its own */
        }
        if (out) buf_utf8(out, cp >= 0xd800 && cp <= 0xdfff ? 0xfffd : cp);
      } else {
        p->pos--;
        return json_error(p, "invalid escape in a string");
      }
    } else {
      size_t len = utf8_sequence(p->s + p->pos, p->n - p->pos);
      if (len == 0) return json_error(p, "invalid UTF-8 in a string");
      if (out) buf_add(out, p->s + p->pos, len);
      p->pos += len;
    }
  }
}

static int json_digits(struct json_parser *p) {
  size_t start = p->pos;
  while (p->pos < p->n && isdigit(p->s[p->pos])) p->pos++;
  return p->pos > start ? 0 : json_error(p, "invalid number");
}

static int json_number(struct json_parser *p) {
  if (p->s[p->pos] == '-') p->pos++;
  if (p->pos < p->n && p->s[p->pos] == '0')
    p->pos++;
  else if (json_digits(p) < 0)
    return -1;
  if (p->pos < p->n && p->s[p->pos] == '.') {
    p->pos++;
    if (json_digits(p) < 0) return -1;
  }
  if (p->pos < p->n && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
    p->pos++;
    if (p->pos < p->n && (p->s[p->pos] == '+' || p->s[p->pos] == '-')) p->pos++;
    if (json_digits(p) < 0) return -1;
  }
  return 0;
}

static int json_literal(struct json_parser *p, const char *word) {
  size_t len = strlen(word);
  if (p->n - p->pos < len || memcmp(p->s + p->pos, word, len) != 0)
    return json_error(p, "unexpected character");
  p->pos += len;
  return 0;
}

static int json_value(struct json_parser *p);

static void json_record_field(struct json_parser *p, size_t start, enum json_kind kind) {
  for (size_t i = 0; i < p->nfields; i++) {
    if (strlen(p->fields[i].key) == p->key.len && memcmp(p->fields[i].key, p->key.data, p->key.len) == 0) {
      p->fields[i].kind = kind;
      p->fields[i].start = start;
      p->fields[i].end = p->pos;
    }
  }
}

/** After an object member or array element: 0 at `close`, 1 after a ',', -1 on anything else. */
static int json_after_member(struct json_parser *p, unsigned char close) {
  json_skip_space(p);
  if (p->pos >= p->n) return json_error(p, "unexpected end of input");
  unsigned char c = p->s[p->pos++];
  if (c == close) return 0;
  if (c == ',') return 1;
  p->pos--;
  return json_error(p, close == '}' ? "expected ',' or '}'" : "expected ',' or ']'");
}

static int json_object(struct json_parser *p) {
  int top_level = p->depth == 1;
  p->pos++;
  json_skip_space(p);
  if (p->pos < p->n && p->s[p->pos] == '}') {
    p->pos++;
    return 0;
  }
  for (;;) {
    json_skip_space(p);
    if (p->pos >= p->n) return json_error(p, "unexpected end of input");
    if (p->s[p->pos] != '"') return json_error(p, "expected a string key");
    p->key.len = 0;
    if (json_string(p, top_level ? &p->key : NULL) < 0) return -1;
    json_skip_space(p);
    if (p->pos >= p->n) return json_error(p, "unexpected end of input");
    if (p->s[p->pos] != ':') return json_error(p, "expected ':'");
    p->pos++;
    json_skip_space(p);
    size_t start = p->pos;
    unsigned char first = start < p->n ? p->s[start] : 0;
    if (json_value(p) < 0) return -1;
    if (top_level)
      json_record_field(p, start,
                        first == '"'                       ? JSON_STRING
                        : first == '-' || isdigit(first) ? JSON_NUMBER
                                                           : JSON_OTHER);
    int next = json_after_member(p, '}');
    if (next <= 0) return next;
  }
}

static int json_array(struct json_parser *p) {
  p->pos++;
  json_skip_space(p);
  if (p->pos < p->n && p->s[p->pos] == ']') {
    p->pos++;
    return 0;
  }
  for (;;) {
    if (json_value(p) < 0) return -1;
    int next = json_after_member(p, ']');
    if (next <= 0) return next;
  }
}

static int json_value(struct json_parser *p) {
  json_skip_space(p);
  if (p->pos >= p->n) return json_error(p, "unexpected end of input");
  switch (p->s[p->pos]) {
    case '{':
    case '[': {
      if (++p->depth > MAX_JSON_DEPTH) return json_error(p, "nested too deeply");
      int r = p->s[p->pos] == '{' ? json_object(p) : json_array(p);
      p->depth--;
      return r;
    }
    case '"':
      return json_string(p, NULL);
    case 't':
      return json_literal(p, "true");
    case 'f':
      return json_literal(p, "false");
    case 'n':
      return json_literal(p, "null");
    default:
      if (p->s[p->pos] == '-' || isdigit(p->s[p->pos])) return json_number(p);
      return json_error(p, "unexpected character");
  }
}

struct json_check {
  const char *error; /* NULL when the text is one valid JSON value */
  size_t offset;
  int is_object;
};

/* Validates text as one JSON value and locates the wanted top-level members of an object. */
static struct json_check json_validate(const char *text, size_t n, struct json_field *fields,
                                       size_t nfields) {
  struct json_parser p = {.s = (const unsigned char *)text, .n = n, .fields = fields, .nfields = nfields};
  for (size_t i = 0; i < nfields; i++) fields[i].kind = JSON_NONE;
  json_skip_space(&p);
  int is_object = p.pos < n && text[p.pos] == '{';
  if (json_value(&p) == 0) {
    json_skip_space(&p);
    if (p.pos < n) json_error(&p, "unexpected text after the JSON value");
  }
  free(p.key.data);
  return (struct json_check){.error = p.error, .offset = p.pos, .is_object = is_object};
}

/* The decoded value of a string field found by json_validate (the text is known to be valid); it
 * may hold NUL characters. */
static struct buf json_field_string(const char *text, const struct json_field *field) {
  struct buf out = {0};
  struct json_parser p = {.s = (const unsigned char *)text, .n = field->end, .pos = field->start};
  buf_reserve(&out, 0);
  json_string(&p, &out);
  return out;
}


/* ---- the invocation ---------------------------------------------------------------------- */

static int is_supported_version(const char *v) {
  for (size_t i = 0; i < sizeof SUPPORTED_VERSIONS / sizeof *SUPPORTED_VERSIONS; i++)
    if (strcmp(v, SUPPORTED_VERSIONS[i]) == 0) return 1;
  return 0;
}

static const char *command_of_environment(void) {
  const char *command = getenv("CNI_COMMAND");
  if (!command || !*command) fail(INVALID_ENVIRONMENT, "CNI_COMMAND is not set", NULL);
  for (size_t i = 0; i < sizeof COMMANDS / sizeof *COMMANDS; i++)
    if (strcmp(command, COMMANDS[i]) == 0) return command;
  failf(INVALID_ENVIRONMENT, "CNI_COMMAND %s is not one of ADD, DEL, CHECK, VERSION, STATUS, GC",
        quoted(command));
}

static struct buf read_stdin(void) {
  struct buf in = {0};
  for (;;) {
    buf_reserve(&in, 65536);
    ssize_t r = read(STDIN_FILENO, in.data + in.len, in.cap - in.len - 1);
    if (r == 0) break;
    if (r < 0) {
      if (errno == EINTR) continue;
      fail(IO_FAILURE, "cannot read the network configuration from stdin", strerror(errno));
    }
    in.len += (size_t)r;
  }
  in.data[in.len] = '\0';
  return in;
}

static int only_space(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!isspace((unsigned char)s[i])) return 0;
  return 1;
}

static void print_version_reply(void) {
  struct buf out = {0};
  buf_str(&out, "{\"cniVersion\":");
  buf_json_cstring(&out, answer_version);
  buf_str(&out, ",\"supportedVersions\":[");
  for (size_t i = 0; i < sizeof SUPPORTED_VERSIONS / sizeof *SUPPORTED_VERSIONS; i++) {
    if (i) buf_add(&out, ",", 1);
    buf_json_cstring(&out, SUPPORTED_VERSIONS[i]);
  }
  buf_str(&out, "]}");
  print_line(out.data, out.len);
}

/* An optional absolute-path member of the config, with request.ts's messages. */
static const char *config_path(const char *text, const struct json_field *field, const char *fallback) {
  if (field->kind == JSON_NONE) return fallback;
  if (field->kind != JSON_STRING) failf(INVALID_NETWORK_CONFIG, "\"%s\" must be a non-empty string", field->key);
  struct buf value = json_field_string(text, field);
  if (value.len == 0) failf(INVALID_NETWORK_CONFIG, "\"%s\" must be a non-empty string", field->key);
  if (value.data[0] != '/' || strlen(value.data) != value.len)
    failf(INVALID_NETWORK_CONFIG, "\"%s\" must be an absolute path", field->key);
  return value.data;
}

static int is_container_id(const char *id) {
  if (!isalnum((unsigned char)id[0])) return 0;
  for (const char *c = id; *c; c++)
    if (!isalnum((unsigned char)*c) && *c != '_' && *c != '.' && *c != '-') return 0;
  return 1;
}

static int is_ifname(const char *name) {
  size_t len = strlen(name);
  if (len == 0 || len > MAX_IFNAME || strcmp(name, ".") == 0 || strcmp(name, "..") == 0) return 0;
  for (const char *c = name; *c; c++)
    if (*c == '/' || *c == ':' || isspace((unsigned char)*c)) return 0;
  return 1;
}

/* For DEL: the attachment that names the queue file, checked as request.ts does. */
static void attachment_of_environment(const char **container_id, const char **ifname) {
  const char *id = getenv("CNI_CONTAINERID");
  if (!id || !*id) fail(INVALID_ENVIRONMENT, "CNI_CONTAINERID is not set", NULL);
  if (strlen(id) > MAX_CONTAINER_ID || !is_container_id(id))
    failf(INVALID_ENVIRONMENT, "CNI_CONTAINERID %s is not letters, digits, \"_\", \".\" and \"-\"", quoted(id));
  const char *name = getenv("CNI_IFNAME");
  if (!name || !*name) fail(INVALID_ENVIRONMENT, "CNI_IFNAME is not set", NULL);
  if (!is_ifname(name))
    failf(INVALID_ENVIRONMENT, "CNI_IFNAME %s is not a valid interface name (1..15 chars)", quoted(name));
  *container_id = id;
  *ifname = name;
}

/* `{"env":{CNI_*…},"config":` — the forwarded body is this, stdin verbatim, and `}`. */
static struct buf body_prefix(void) {
  struct buf b = {0};
  buf_str(&b, "{\"env\":{");
  int first = 1;
  for (char **e = environ; *e; e++) {
    const char *eq = strchr(*e, '=');
    if (strncmp(*e, "CNI_", 4) != 0 || !eq) continue;
    if (!first) buf_add(&b, ",", 1);
    first = 0;
    buf_json_string(&b, *e, (size_t)(eq - *e));
    buf_add(&b, ":", 1);
    buf_json_cstring(&b, eq + 1);
  }
  buf_str(&b, "},\"config\":");
  return b;
}

/* ---- the DEL queue (src/cni/del-queue.ts replays it) ------------------------------------- */

static int mkdir_parents(const char *dir, mode_t mode) {
  char *path = strdup(dir);
  if (!path) die_oom();
  for (char *slash = path + 1;; slash++) {
    if (*slash != '/' && *slash != '\0') continue;
    char saved = *slash;
    *slash = '\0';
    if (mkdir(path, mode) < 0 && errno != EEXIST) {
      free(path);
      return -1;
    }
    *slash = saved;
    if (saved == '\0') break;
  }
  free(path);
  struct stat st;
  if (stat(dir, &st) < 0) return -1;
  if (!S_ISDIR(st.st_mode)) {
    errno = ENOTDIR;
    return -1;
  }
  return 0;
}

static int write_pieces(int fd, const struct iovec *pieces, int count) {
  for (int i = 0; i < count; i++)
    if (write_all(fd, pieces[i].iov_base, pieces[i].iov_len) < 0) return -1;
  return 0;
}

/* As writeFileAtomic: temp sibling with the final mode, fsync, rename, fsync the directory. */
static void queue_del(const char *dir, const char *container_id, const char *ifname, const struct iovec *body,
                      int count) {
  if (mkdir_parents(dir, 0700) < 0)
    failf(IO_FAILURE, "cannot queue the DEL: cannot create %s: %s", dir, strerror(errno));
  struct buf path = {0}, tmp = {0};
  buf_printf(&path, "%s/%s:%s%s", dir, container_id, ifname, DEL_SUFFIX);
  uint32_t nonce;
  if (getrandom(&nonce, sizeof nonce, 0) != sizeof nonce) nonce = (uint32_t)time(NULL) ^ (uint32_t)clock();
  buf_printf(&tmp, "%s/.%s:%s%s.%ld.%08x.tmp", dir, container_id, ifname, DEL_SUFFIX, (long)getpid(), nonce);
  int fd = open(tmp.data, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) failf(IO_FAILURE, "cannot queue the DEL in %s: %s", tmp.data, strerror(errno));
  if (write_pieces(fd, body, count) < 0 || fsync(fd) < 0) {
    int saved = errno;
    close(fd);
    unlink(tmp.data);
    failf(IO_FAILURE, "cannot queue the DEL in %s: %s", tmp.data, strerror(saved));
  }
  close(fd);
  if (rename(tmp.data, path.data) < 0) {
    int saved = errno;
    unlink(tmp.data);
    failf(IO_FAILURE, "cannot queue the DEL as %s: %s", path.data, strerror(saved));
  }
  int dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0 || fsync(dir_fd) < 0) failf(IO_FAILURE, "cannot sync %s: %s", dir, strerror(errno));
  close(dir_fd);
}

/* ---- HTTP over the admin socket ---------------------------------------------------------- */

enum exchange_outcome { EXCHANGE_OK, AGENT_DOWN, AGENT_UNREACHABLE };

struct http_reply {
  int status;
  const char *body;
  size_t body_len;
  struct buf raw;
  struct buf chunked_body;
  struct buf problem; /* why the agent is unreachable, for AGENT_DOWN and AGENT_UNREACHABLE */
};

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *find_bytes(const char *hay, size_t n, const char *needle) {
  size_t len = strlen(needle);
  if (n < len) return NULL;
  for (size_t i = 0; i + len <= n; i++)
    if (memcmp(hay + i, needle, len) == 0) return hay + i;
  return NULL;
}

/* The value of header `name` (case-insensitive) in the header block, or NULL. */
static const char *header_value(const char *headers, const char *end, const char *name, size_t *len) {
  size_t name_len = strlen(name);
  for (const char *line = headers; line < end;) {
    const char *eol = find_bytes(line, (size_t)(end - line), "\r\n");
    if (!eol) eol = end;
    if ((size_t)(eol - line) > name_len && strncasecmp(line, name, name_len) == 0 && line[name_len] == ':') {
      const char *v = line + name_len + 1;
      while (v < eol && (*v == ' ' || *v == '\t')) v++;
      const char *e = eol;
      while (e > v && (e[-1] == ' ' || e[-1] == '\t')) e--;
      *len = (size_t)(e - v);
      return v;
    }
    line = eol + 2;
  }
  return NULL;
}

enum parse_state { REPLY_INCOMPLETE, REPLY_COMPLETE, REPLY_MALFORMED };

/* Decodes a chunked body; REPLY_INCOMPLETE until the last chunk (and any trailers) arrived. */
static enum parse_state dechunk(const char *p, const char *end, struct buf *out) {
  out->len = 0;
  for (;;) {
    const char *eol = find_bytes(p, (size_t)(end - p), "\r\n");
    if (!eol) return REPLY_INCOMPLETE;
    size_t size = 0;
    const char *d = p;
    for (; d < eol && hex_value((unsigned char)*d) >= 0; d++) {
      if (size > (SIZE_MAX >> 4)) return REPLY_MALFORMED;
      size = size * 16 + (size_t)hex_value((unsigned char)*d);
    }
    if (d == p || (d < eol && *d != ';')) return REPLY_MALFORMED;
    p = eol + 2;
    if (size == 0) return find_bytes(p - 2, (size_t)(end - p + 2), "\r\n\r\n") ? REPLY_COMPLETE : REPLY_INCOMPLETE;
    if ((size_t)(end - p) < size + 2) return REPLY_INCOMPLETE;
    if (p[size] != '\r' || p[size + 1] != '\n') return REPLY_MALFORMED;
    buf_add(out, p, size);
    p += size + 2;
  }
}

/* Parses what has arrived; with `closed`, the agent will send nothing more. */
static enum parse_state parse_reply(struct http_reply *r, int closed, const char **problem) {
  const char *data = r->raw.data;
  size_t n = r->raw.len;
  *problem = NULL;
  if (n >= 5 && memcmp(data, "HTTP/", 5) != 0) {
    *problem = "the agent sent a reply that is not HTTP";
    return REPLY_MALFORMED;
  }
  const char *head_end = find_bytes(data, n, "\r\n\r\n");
  if (!head_end) {
    *problem = n == 0 ? "the agent closed the connection without a reply"
                      : "the agent closed the connection in the middle of its reply's headers";
    return closed ? REPLY_MALFORMED : REPLY_INCOMPLETE;
  }
  const char *sp = memchr(data, ' ', (size_t)(head_end - data));
  if (!sp || head_end - sp < 4 || !isdigit((unsigned char)sp[1]) || !isdigit((unsigned char)sp[2]) ||
      !isdigit((unsigned char)sp[3]) || (head_end - sp > 4 && sp[4] != ' ' && sp[4] != '\r')) {
    *problem = "the agent sent a malformed HTTP status line";
    return REPLY_MALFORMED;
  }
  r->status = (sp[1] - '0') * 100 + (sp[2] - '0') * 10 + (sp[3] - '0');
  const char *headers = memchr(data, '\n', (size_t)(head_end - data));
  headers = headers ? headers + 1 : head_end;
  const char *body = head_end + 4;
  size_t available = n - (size_t)(body - data);
  size_t len;
  const char *te = header_value(headers, head_end + 2, "Transfer-Encoding", &len);
  if (te && len == 7 && strncasecmp(te, "chunked", 7) == 0) {
    enum parse_state s = dechunk(body, data + n, &r->chunked_body);
    r->body = r->chunked_body.data ? r->chunked_body.data : "";
    r->body_len = r->chunked_body.len;
    if (s == REPLY_MALFORMED) *problem = "the agent sent a malformed chunked body";
    if (s == REPLY_INCOMPLETE && closed) {
      *problem = "the agent's reply was cut short";
      return REPLY_MALFORMED;
    }
    return s;
  }
  const char *cl = header_value(headers, head_end + 2, "Content-Length", &len);
  r->body = body;
  if (!cl) {
    r->body_len = available;
    return closed ? REPLY_COMPLETE : REPLY_INCOMPLETE;
  }
  unsigned long long expected = 0;
  for (size_t i = 0; i < len; i++) {
    if (!isdigit((unsigned char)cl[i]) || expected > (ULLONG_MAX - 9) / 10) {
      *problem = "the agent sent a malformed Content-Length";
      return REPLY_MALFORMED;
    }
    expected = expected * 10 + (unsigned long long)(cl[i] - '0');
  }
  if (len == 0) {
    *problem = "the agent sent a malformed Content-Length";
    return REPLY_MALFORMED;
  }
  if (available >= expected) {
    r->body_len = (size_t)expected;
    return REPLY_COMPLETE;
  }
  if (closed) {
    *problem = "the agent's reply was cut short";
    return REPLY_MALFORMED;
  }
  return REPLY_INCOMPLETE;
}

static enum exchange_outcome unreachable(struct http_reply *r, enum exchange_outcome kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static enum exchange_outcome unreachable(struct http_reply *r, enum exchange_outcome kind, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n > 0) {
    buf_reserve(&r->problem, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(r->problem.data + r->problem.len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    r->problem.len += (size_t)n;
  }
  return kind;
}

static int connect_agent(const char *socket_path, struct http_reply *r, enum exchange_outcome *failure) {
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  if (strlen(socket_path) >= sizeof addr.sun_path)
    failf(INVALID_NETWORK_CONFIG, "\"socket\" %s is longer than %zu bytes", quoted(socket_path),
          sizeof addr.sun_path - 1);
  memcpy(addr.sun_path, socket_path, strlen(socket_path) + 1);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) failf(IO_FAILURE, "cannot create a socket: %s", strerror(errno));
  /* A unix connect waits while the agent's backlog is full; bound that wait too. */
  struct timeval tv = {.tv_sec = AGENT_TIMEOUT_MS / 1000};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  while (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
    if (errno == EINTR) continue;
    int e = errno;
    close(fd);
    if (e == ENOENT)
      *failure = unreachable(r, AGENT_DOWN, "the agent is not running: no admin socket at %s", socket_path);
    else if (e == ECONNREFUSED)
      *failure = unreachable(r, AGENT_DOWN, "the agent is not running: nothing listens on %s (a stale socket)",
                             socket_path);
    else if (e == EACCES)
      *failure = unreachable(r, AGENT_UNREACHABLE, "permission denied on %s: run as root", socket_path);
    else if (e == EAGAIN || e == EINPROGRESS)
      *failure = unreachable(r, AGENT_UNREACHABLE, "cannot reach the agent on %s: no answer within %d ms",
                             socket_path, AGENT_TIMEOUT_MS);
    else
      *failure = unreachable(r, AGENT_UNREACHABLE, "cannot reach the agent on %s: %s", socket_path, strerror(e));
    return -1;
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  return fd;
}

/* Sends the request and reads the reply at the same time: an agent may answer (e.g. 413) before
 * it has read the whole request, and then stop reading. */
static enum exchange_outcome exchange(const char *socket_path, struct iovec *iov, int iovcnt, struct http_reply *r) {
  long long deadline = now_ms() + AGENT_TIMEOUT_MS;
  enum exchange_outcome failure = AGENT_UNREACHABLE;
  int fd = connect_agent(socket_path, r, &failure);
  if (fd < 0) return failure;
  int sending = 1, send_error = 0;
  enum parse_state state = REPLY_INCOMPLETE;
  const char *problem = NULL;
  while (state == REPLY_INCOMPLETE) {
    long long left = deadline - now_ms();
    if (left <= 0) {
      close(fd);
      return unreachable(r, AGENT_UNREACHABLE, "cannot reach the agent on %s: no answer within %d ms", socket_path,
                         AGENT_TIMEOUT_MS);
    }
    struct pollfd pfd = {.fd = fd, .events = (short)(POLLIN | (sending ? POLLOUT : 0))};
    int ready = poll(&pfd, 1, (int)left);
    if (ready < 0 && errno != EINTR) failf(IO_FAILURE, "poll: %s", strerror(errno));
    if (ready <= 0) continue;
    if (sending && (pfd.revents & (POLLOUT | POLLERR | POLLHUP))) {
      struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)iovcnt};
      ssize_t w = sendmsg(fd, &msg, MSG_NOSIGNAL);
      if (w < 0 && errno != EAGAIN && errno != EINTR) {
        send_error = errno; /* the agent stopped reading; its reply may still say why */
        sending = 0;
      }
      size_t sent = w > 0 ? (size_t)w : 0;
      for (; iovcnt > 0 && sent >= iov->iov_len; iov++, iovcnt--) sent -= iov->iov_len;
      if (iovcnt > 0) {
        iov->iov_base = (char *)iov->iov_base + sent;
        iov->iov_len -= sent;
      } else {
        sending = 0;
      }
    }
    if (pfd.revents & (POLLIN | POLLERR | POLLHUP)) {
      buf_reserve(&r->raw, 65536);
      ssize_t got = read(fd, r->raw.data + r->raw.len, r->raw.cap - r->raw.len - 1);
      int read_error = got < 0 ? errno : 0;
      if (read_error == EAGAIN || read_error == EINTR) continue;
      if (read_error && r->raw.len == 0) {
        close(fd);
        return unreachable(r, AGENT_UNREACHABLE, "cannot reach the agent on %s: %s", socket_path,
                           strerror(read_error));
      }
      if (got > 0) r->raw.len += (size_t)got;
      r->raw.data[r->raw.len] = '\0';
      state = parse_reply(r, got <= 0, &problem);
    }
  }
  close(fd);
  if (state == REPLY_COMPLETE) return EXCHANGE_OK;
  if (send_error && r->raw.len == 0)
    return unreachable(r, AGENT_UNREACHABLE, "the agent on %s closed the connection while the request was sent: %s",
                       socket_path, strerror(send_error));
  struct buf quote = {0};
  buf_json_string(&quote, r->raw.data, r->raw.len < QUOTED_REPLY_BYTES ? r->raw.len : QUOTED_REPLY_BYTES);
  return unreachable(r, AGENT_UNREACHABLE, "%s: %s", problem, r->raw.len ? quote.data : "(nothing)");
}

/* ---- the agent's answer ------------------------------------------------------------------ */

enum { REPLY_CNI_CODE, REPLY_ERROR, REPLY_DETAILS, REPLY_FIELDS };

__attribute__((noreturn)) static void fail_not_json(const struct http_reply *r) {
  struct buf msg = {0};
  buf_str(&msg, "weft agent not reachable: the agent sent a reply that is not JSON: ");
  buf_add(&msg, r->body, r->body_len < QUOTED_REPLY_BYTES ? r->body_len : QUOTED_REPLY_BYTES);
  fail_with(TRY_AGAIN_LATER, msg.data, msg.len, NULL, 0);
}

/* The agent's error body {error, cniCode?, details?} (src/cni/endpoints.ts) as the CNI error. */
__attribute__((noreturn)) static void fail_from_agent(const struct http_reply *r) {
  struct json_field fields[REPLY_FIELDS] = {{.key = "cniCode"}, {.key = "error"}, {.key = "details"}};
  struct json_check check = json_validate(r->body, r->body_len, fields, REPLY_FIELDS);
  if (check.error) fail_not_json(r);
  int code = r->status == 503 ? TRY_AGAIN_LATER : UNKNOWN_FAILURE;
  if (check.is_object && fields[REPLY_CNI_CODE].kind == JSON_NUMBER) {
    char *end;
    double v = strtod(r->body + fields[REPLY_CNI_CODE].start, &end);
    if (v >= INT_MIN && v <= INT_MAX && v == (double)(int)v) code = (int)v;
  }
  struct buf msg = {0}, details = {0};
  if (check.is_object && fields[REPLY_ERROR].kind == JSON_STRING)
    msg = json_field_string(r->body, &fields[REPLY_ERROR]);
  else
    buf_printf(&msg, "HTTP %d", r->status);
  if (check.is_object && fields[REPLY_DETAILS].kind == JSON_STRING)
    details = json_field_string(r->body, &fields[REPLY_DETAILS]);
  fail_with(code, msg.data, msg.len, details.data, details.len);
}

/* ---- main -------------------------------------------------------------------------------- */

enum { CONFIG_VERSION, CONFIG_SOCKET, CONFIG_DEL_QUEUE_DIR, CONFIG_FIELDS };

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  const char *command = command_of_environment();
  struct buf in = read_stdin();

  struct json_field fields[CONFIG_FIELDS] = {{.key = "cniVersion"}, {.key = "socket"}, {.key = "delQueueDir"}};
  struct json_check check = json_validate(in.data, in.len, fields, CONFIG_FIELDS);
  if (!check.error && check.is_object && fields[CONFIG_VERSION].kind == JSON_STRING) {
    const char *version = json_field_string(in.data, &fields[CONFIG_VERSION]).data;
    if (is_supported_version(version)) answer_version = version;
  }
  if (strcmp(command, "VERSION") == 0) {
    /* Runtimes call VERSION with dummy CNI_* values and just {"cniVersion"}: answer from stdin alone. */
    print_version_reply();
    return 0;
  }
  if (only_space(in.data, in.len)) fail(DECODING_FAILURE, "no network configuration on stdin", NULL);
  if (check.error)
    failf(DECODING_FAILURE, "the network configuration on stdin is not valid JSON: %s at byte %zu", check.error,
          check.offset);
  if (!check.is_object) fail(DECODING_FAILURE, "the network configuration on stdin is not a JSON object", NULL);
  const char *socket_path = config_path(in.data, &fields[CONFIG_SOCKET], DEFAULT_SOCKET);
  const char *queue_dir = config_path(in.data, &fields[CONFIG_DEL_QUEUE_DIR], DEFAULT_DEL_QUEUE_DIR);
  int is_del = strcmp(command, "DEL") == 0;
  const char *container_id = NULL, *ifname = NULL;
  if (is_del) attachment_of_environment(&container_id, &ifname);

  struct buf prefix = body_prefix();
  struct iovec body[3] = {{prefix.data, prefix.len}, {in.data, in.len}, {"}", 1}};
  struct buf head = {0};
  char path[16];
  size_t i = 0;
  for (; command[i] && i < sizeof path - 1; i++) path[i] = (char)tolower((unsigned char)command[i]);
  path[i] = '\0';
  buf_printf(&head,
             "POST " CNI_API_PREFIX "%s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
             "Content-Length: %zu\r\nConnection: close\r\n\r\n",
             path, prefix.len + in.len + 1);
  struct iovec request[4] = {{head.data, head.len}, body[0], body[1], body[2]};

  struct http_reply reply = {0};
  enum exchange_outcome outcome = exchange(socket_path, request, 4, &reply);
  if (outcome == AGENT_DOWN && is_del) {
    /* The agent is down: keep the release on disk; the agent replays it before serving again. */
    queue_del(queue_dir, container_id, ifname, body, 3);
    return 0;
  }
  if (outcome != EXCHANGE_OK) {
    struct buf msg = {0};
    buf_str(&msg, "weft agent not reachable: ");
    buf_add(&msg, reply.problem.data, reply.problem.len);
    fail_with(strcmp(command, "STATUS") == 0 ? LIMITED_CONNECTIVITY : TRY_AGAIN_LATER, msg.data, msg.len, NULL, 0);
  }
  if (reply.status < 200 || reply.status > 299) fail_from_agent(&reply);
  if (json_validate(reply.body, reply.body_len, NULL, 0).error) fail_not_json(&reply);
  if (strcmp(command, "ADD") == 0) print_line(reply.body, reply.body_len);
  return 0;
}
