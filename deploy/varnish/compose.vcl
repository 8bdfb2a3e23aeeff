# Varnish in deploy/compose.yaml: the shipped default.vcl (mounted beside this file as
# onair.vcl) with the two origins behind a round-robin director instead of its one
# 127.0.0.1:8080 backend. This file's vcl_recv runs before the shipped one (VCL joins
# subroutines of one name in order), so every request, piped progressive mounts included,
# goes to a healthy origin, and the shipped grace rules (std.healthy) see the director.
#
# The shipped `onair` backend stays declared but unused: varnishd runs with
# `-p vcc_err_unref=off` (compose.yaml), which makes that a warning instead of an error.
vcl 4.1;

import directors;

probe origin_health {
    .url = "/healthz";
    .interval = 1s;
    .timeout = 500ms;
    .window = 3;
    .threshold = 2;
}

backend origin_1 {
    .host = "origin-1";
    .port = "8080";
    .probe = origin_health;
    .connect_timeout = 1s;
    .first_byte_timeout = 15s;   # LL-HLS blocking reloads are held up to 3 × TD
    .between_bytes_timeout = 5s;
}

backend origin_2 {
    .host = "origin-2";
    .port = "8080";
    .probe = origin_health;
    .connect_timeout = 1s;
    .first_byte_timeout = 15s;
    .between_bytes_timeout = 5s;
}

sub vcl_init {
    new origins = directors.round_robin();
    origins.add_backend(origin_1);
    origins.add_backend(origin_2);
}

sub vcl_recv {
    set req.backend_hint = origins.backend();
}

include "./onair.vcl";
