/*
 * The bench's container runtime, as far as exec'ing CNI plugins goes: started once inside a node's
 * network namespace, it runs every plugin it is asked to with posix_spawn (glibc: clone with
 * CLONE_VM|CLONE_VFORK, as Go's os.StartProcess in kubelet/containerd/CRI-O), many at once, and
 * answers each with its exit status, stdout, stderr and the time from just before posix_spawn to
 * the child's exit with both its outputs at EOF (CLOCK_MONOTONIC). A fork() from a big Node process
 * copies its page tables per plugin, which a Go runtime never pays; bench/README.md has the numbers.
 *
 * Wire format (all numbers decimal ASCII), one frame per request on stdin:
 *   <id> <argc> <envc> <strings_len> <stdin_len>\n
 *   <strings_len bytes: argc argv strings, then envc "K=V" strings, each ending in NUL><stdin_len bytes>
 * and one frame per answer on stdout, in completion order:
 *   <id> <exit|signal|error> <value> <latency_ns> <stdout_len> <stderr_len>\n<stdout bytes><stderr bytes>
 * `error` means the plugin could not be started: value is the errno, stderr says why. A malformed
 * request is a bug in the caller: the runner says so on stderr and exits 2. At EOF on stdin it
 * exits once every running plugin has been answered.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_STRINGS 4096
#define MAX_STRINGS_LEN (16u << 20)
#define MAX_STDIN_LEN (256u << 20)
#define MAX_HEADER_LEN 128
#define READ_CHUNK 65536

/* ---- growable byte buffer ---------------------------------------------------------------- */

struct buf {
  char *data;
  size_t len;
  size_t cap;
};

__attribute__((noreturn, format(printf, 1, 2))) static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("cni-runner: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(2);
}

static void buf_reserve(struct buf *b, size_t extra) {
  if (extra <= b->cap - b->len) return;
  size_t cap = b->cap ? b->cap : 4096;
  while (cap - b->len < extra) cap *= 2;
  char *data = realloc(b->data, cap);
  if (!data) die("out of memory");
  b->data = data;
  b->cap = cap;
}

static void buf_add(struct buf *b, const void *data, size_t n) {
  buf_reserve(b, n);
  memcpy(b->data + b->len, data, n);
  b->len += n;
}

static void buf_drop_front(struct buf *b, size_t n) {
  memmove(b->data, b->data + n, b->len - n);
  b->len -= n;
}

static void buf_free(struct buf *b) {
  free(b->data);
  *b = (struct buf){0};
}

/* One read() into b; returns its result (0 at EOF). */
static ssize_t buf_read(struct buf *b, int fd) {
  buf_reserve(b, READ_CHUNK);
  ssize_t n = read(fd, b->data + b->len, READ_CHUNK);
  if (n > 0) b->len += (size_t)n;
  return n;
}

static void write_all(int fd, const char *data, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, data, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) die("writing an answer: %s", strerror(errno));
    data += w;
    n -= (size_t)w;
  }
}

/* ---- jobs -------------------------------------------------------------------------------- */

struct job {
  unsigned long long id;
  pid_t pid; /* 0 once reaped */
  int status;
  int in_fd, out_fd, err_fd; /* our ends of the child's pipes, -1 once closed */
  struct buf in;             /* what is left to write to the child's stdin starts at in_off */
  size_t in_off;
  struct buf out, err;
  struct timespec start, end; /* end: the last of exit, stdout EOF, stderr EOF */
};

static struct job **jobs;
static size_t job_count, job_cap;

static void now(struct timespec *t) { clock_gettime(CLOCK_MONOTONIC, t); }

static unsigned long long elapsed_ns(const struct timespec *from, const struct timespec *to) {
  return (unsigned long long)(to->tv_sec - from->tv_sec) * 1000000000ull +
         (unsigned long long)(to->tv_nsec - from->tv_nsec);
}

static void close_fd(int *fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

static void answer(unsigned long long id, const char *kind, int value, unsigned long long latency_ns,
                   const struct buf *out, const char *err, size_t err_len) {
  char head[MAX_HEADER_LEN];
  int n = snprintf(head, sizeof head, "%llu %s %d %llu %zu %zu\n", id, kind, value, latency_ns,
                   out ? out->len : 0, err_len);
  write_all(STDOUT_FILENO, head, (size_t)n);
  if (out) write_all(STDOUT_FILENO, out->data, out->len);
  write_all(STDOUT_FILENO, err, err_len);
}

static void job_answer_and_free(size_t index) {
  struct job *j = jobs[index];
  const char *kind = WIFSIGNALED(j->status) ? "signal" : "exit";
  int value = WIFSIGNALED(j->status) ? WTERMSIG(j->status) : WEXITSTATUS(j->status);
  answer(j->id, kind, value, elapsed_ns(&j->start, &j->end), &j->out, j->err.data, j->err.len);
  close_fd(&j->in_fd);
  buf_free(&j->in);
  buf_free(&j->out);
  buf_free(&j->err);
  free(j);
  jobs[index] = jobs[--job_count];
}

static bool job_done(const struct job *j) { return j->pid == 0 && j->out_fd < 0 && j->err_fd < 0; }

/* Pipe with our end non-blocking (only ours: a plugin may expect blocking stdio) and both ends
 * close-on-exec, so that no plugin holds another's pipe open and delays its EOF. */
static void make_pipe(int fds[2], int ours) {
  if (pipe2(fds, O_CLOEXEC) < 0) die("pipe: %s", strerror(errno));
  if (fcntl(fds[ours], F_SETFL, O_NONBLOCK) < 0) die("fcntl: %s", strerror(errno));
}

static void start_job(unsigned long long id, char **argv, char **envp, const char *input, size_t input_len) {
  int in[2], out[2], err[2];
  make_pipe(in, 1);
  make_pipe(out, 0);
  make_pipe(err, 0);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in[0], STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err[1], STDERR_FILENO);
  /* The runner ignores SIGPIPE and blocks SIGCHLD; a plugin starts with neither. */
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  sigaddset(&defaults, SIGCHLD);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  struct job *j = calloc(1, sizeof *j);
  if (!j) die("out of memory");
  j->id = id;
  now(&j->start);
  int rc = posix_spawnp(&j->pid, argv[0], &actions, &attr, argv, envp);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  close(in[0]);
  close(out[1]);
  close(err[1]);
  if (rc != 0) {
    struct timespec end;
    now(&end);
    char message[512];
    int n = snprintf(message, sizeof message, "cni-runner: cannot exec %s: %s\n", argv[0], strerror(rc));
    answer(id, "error", rc, elapsed_ns(&j->start, &end), NULL, message,
           n < (int)sizeof message ? (size_t)n : sizeof message - 1);
    close(in[1]);
    close(out[0]);
    close(err[0]);
    free(j);
    return;
  }
  j->in_fd = in[1];
  j->out_fd = out[0];
  j->err_fd = err[0];
  if (input_len > 0)
    buf_add(&j->in, input, input_len);
  else
    close_fd(&j->in_fd);
  if (job_count == job_cap) {
    job_cap = job_cap ? job_cap * 2 : 64;
    jobs = realloc(jobs, job_cap * sizeof *jobs);
    if (!jobs) die("out of memory");
  }
  jobs[job_count++] = j;
}

/* ---- requests ---------------------------------------------------------------------------- */

/* Starts the request at the front of `requests` if it is all there; returns whether it was. */
static bool start_next_request(struct buf *requests) {
  const char *newline = memchr(requests->data, '\n', requests->len);
  if (!newline) {
    if (requests->len > MAX_HEADER_LEN) die("request header longer than %d bytes", MAX_HEADER_LEN);
    return false;
  }
  size_t header_len = (size_t)(newline - requests->data) + 1;
  char header[MAX_HEADER_LEN + 1];
  if (header_len > MAX_HEADER_LEN) die("request header longer than %d bytes", MAX_HEADER_LEN);
  memcpy(header, requests->data, header_len - 1);
  header[header_len - 1] = '\0';
  unsigned long long id;
  size_t argc, envc, strings_len, stdin_len;
  int used = 0;
  if (sscanf(header, "%llu %zu %zu %zu %zu%n", &id, &argc, &envc, &strings_len, &stdin_len, &used) != 5 ||
      header[used] != '\0')
    die("malformed request header: %s", header);
  if (argc < 1 || argc > MAX_STRINGS || envc > MAX_STRINGS - argc || strings_len > MAX_STRINGS_LEN || stdin_len > MAX_STDIN_LEN)
    die("request %llu out of bounds: %s", id, header);
  if (requests->len - header_len < strings_len + stdin_len) return false;

  char *strings = requests->data + header_len;
  char *vector[MAX_STRINGS + 2];
  size_t count = 0;
  for (size_t at = 0; at < strings_len; count++) {
    char *end = memchr(strings + at, '\0', strings_len - at);
    if (!end || count == argc + envc) die("request %llu: strings do not match argc + envc", id);
    vector[count + (count >= argc)] = strings + at; /* argv, NULL, envp, NULL */
    at = (size_t)(end - strings) + 1;
  }
  if (count != argc + envc) die("request %llu: strings do not match argc + envc", id);
  vector[argc] = NULL;
  vector[argc + 1 + envc] = NULL;
  start_job(id, vector, vector + argc + 1, strings + strings_len, stdin_len);
  buf_drop_front(requests, header_len + strings_len + stdin_len);
  return true;
}

/* ---- the loop ---------------------------------------------------------------------------- */

static void reap(int sigfd) {
  struct signalfd_siginfo info;
  while (read(sigfd, &info, sizeof info) > 0) {
  }
  int status;
  pid_t pid;
  while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
    for (size_t i = 0; i < job_count; i++) {
      if (jobs[i]->pid != pid) continue;
      jobs[i]->pid = 0;
      jobs[i]->status = status;
      now(&jobs[i]->end);
      close_fd(&jobs[i]->in_fd); /* a plugin that exited reads no more */
      break;
    }
  }
}

static void feed_stdin(struct job *j) {
  ssize_t n = write(j->in_fd, j->in.data + j->in_off, j->in.len - j->in_off);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (n < 0) { /* EPIPE: the plugin closed its stdin; what it did not read is not our concern */
    close_fd(&j->in_fd);
    return;
  }
  j->in_off += (size_t)n;
  if (j->in_off == j->in.len) close_fd(&j->in_fd);
}

static void drain(struct job *j, int *fd, struct buf *into) {
  ssize_t n = buf_read(into, *fd);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (n <= 0) { /* EOF, or an error that ends the stream all the same */
    close_fd(fd);
    now(&j->end);
  }
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  if (sigprocmask(SIG_BLOCK, &chld, NULL) < 0) die("sigprocmask: %s", strerror(errno));
  int sigfd = signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC);
  if (sigfd < 0) die("signalfd: %s", strerror(errno));
  fcntl(STDIN_FILENO, F_SETFD, FD_CLOEXEC);
  fcntl(STDOUT_FILENO, F_SETFD, FD_CLOEXEC);

  struct buf requests = {0};
  bool requests_open = true;
  struct pollfd *fds = NULL;
  struct job **owners = NULL; /* owners[i]: the job fds[i] belongs to, NULL for ours */
  size_t fds_cap = 0;
  bool more = false; /* a complete request is waiting to be started */
  while (requests_open || job_count > 0 || more) {
    size_t need = 2 + 3 * job_count;
    if (need > fds_cap) {
      fds_cap = need * 2;
      fds = realloc(fds, fds_cap * sizeof *fds);
      owners = realloc(owners, fds_cap * sizeof *owners);
      if (!fds || !owners) die("out of memory");
    }
    size_t nfds = 0;
    fds[nfds] = (struct pollfd){.fd = sigfd, .events = POLLIN};
    owners[nfds++] = NULL;
    if (requests_open) {
      fds[nfds] = (struct pollfd){.fd = STDIN_FILENO, .events = POLLIN};
      owners[nfds++] = NULL;
    }
    for (size_t i = 0; i < job_count; i++) {
      struct job *j = jobs[i];
      if (j->in_fd >= 0) fds[nfds] = (struct pollfd){.fd = j->in_fd, .events = POLLOUT}, owners[nfds++] = j;
      if (j->out_fd >= 0) fds[nfds] = (struct pollfd){.fd = j->out_fd, .events = POLLIN}, owners[nfds++] = j;
      if (j->err_fd >= 0) fds[nfds] = (struct pollfd){.fd = j->err_fd, .events = POLLIN}, owners[nfds++] = j;
    }
    if (poll(fds, nfds, more ? 0 : -1) < 0) {
      if (errno == EINTR) continue;
      die("poll: %s", strerror(errno));
    }
    for (size_t i = 0; i < nfds; i++) {
      if (!fds[i].revents) continue;
      struct job *j = owners[i];
      if (fds[i].fd == sigfd) {
        reap(sigfd);
      } else if (!j) {
        ssize_t n = buf_read(&requests, STDIN_FILENO);
        if (n < 0 && errno != EINTR) die("reading requests: %s", strerror(errno));
        if (n == 0) requests_open = false;
      } else if (fds[i].fd == j->in_fd) {
        feed_stdin(j);
      } else if (fds[i].fd == j->out_fd) {
        drain(j, &j->out_fd, &j->out);
      } else if (fds[i].fd == j->err_fd) {
        drain(j, &j->err_fd, &j->err);
      }
    }
    /* One start per turn, as a runtime spawning from parallel goroutines would: children that exited
     * meanwhile are reaped and timed before the next start, not after a whole burst of spawns. Jobs
     * started now get their fds polled on the next turn; those fds never reach owners[] here. */
    more = requests.len > 0 && start_next_request(&requests);
    if (!more && !requests_open && requests.len > 0) die("requests ended inside a frame");
    for (size_t i = 0; i < job_count;) {
      if (job_done(jobs[i]))
        job_answer_and_free(i);
      else
        i++;
    }
  }
  buf_free(&requests);
  free(fds);
  free(owners);
  free(jobs);
  return 0;
}
