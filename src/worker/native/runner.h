/* The fast path's JS functions (runner.c): runnerOpen, runnerSpawn, runnerKill. */
#ifndef SPAWNPOOL_RUNNER_H
#define SPAWNPOOL_RUNNER_H

#include <node_api.h>

int runner_define(napi_env env, napi_value exports);

#endif
