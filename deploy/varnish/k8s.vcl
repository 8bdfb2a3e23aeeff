# Varnish in deploy/k8s: the shipped default.vcl (mounted beside this file as onair.vcl)
# with its backend replaced by the onair-origin Service, which spreads connections over the
# origin pods that are ready (their /healthz answers). This file's vcl_recv runs before the
# shipped one (VCL joins subroutines of one name in order), so every request, piped
# progressive mounts included, goes there, and the shipped grace rules see its health.
#
# The shipped `onair` backend stays declared but unused: varnishd runs with
# `-p vcc_err_unref=off` (varnish.yaml), which makes that a warning instead of an error.
vcl 4.1;

probe origin_health {
    .url = "/healthz";
    .interval = 1s;
    .timeout = 500ms;
    .window = 3;
    .threshold = 2;
}

backend origin {
    .host = "onair-origin";
    .port = "8080";
    .probe = origin_health;
    .connect_timeout = 1s;
    .first_byte_timeout = 15s;   # LL-HLS blocking reloads are held up to 3 × TD
    .between_bytes_timeout = 5s;
}

sub vcl_recv {
    set req.backend_hint = origin;
}

include "./onair.vcl";
