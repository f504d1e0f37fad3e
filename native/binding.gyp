{
  "targets": [
    {
      "target_name": "weft_dp",
      "sources": ["weft_dp.c", "gso.c", "netlink.c"],
      "cflags_c": ["-std=gnu11"],
      "configurations": {
        "Release": {
          "cflags!": ["-O3"],
          "cflags": ["-O2", "-ftree-vectorize", "-Wall"]
        }
      }
    }
  ]
}
