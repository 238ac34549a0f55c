{
  "targets": [
    {
      "target_name": "spawnpool_native",
      "sources": ["spawn.c", "child.c", "runner.c", "sink.c"],
      "cflags_c": ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-fvisibility=hidden"]
    }
  ]
}
