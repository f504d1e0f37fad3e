/* Pod links over rtnetlink (netlink.c): adds podAttach and podDetach to the addon's exports. */
#ifndef WEFT_NETLINK_H
#define WEFT_NETLINK_H

#include <node_api.h>

void netlink_register(napi_env env, napi_value exports);

#endif
