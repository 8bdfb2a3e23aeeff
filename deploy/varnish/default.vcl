# Varnish in front of onair origins (Varnish 6/7, VCL 4.1).
#
#  - Cache keys (README, URL layout): the path and the query parameters that change the
#    origin's answer (_HLS_msn, _HLS_part, _HLS_skip, token), sorted, so LL-HLS blocking
#    reloads (?_HLS_msn=12&_HLS_part=3 and ?_HLS_part=3&_HLS_msn=12) share one object. The
#    origin ignores any other parameter, so it is left out of the key: a random extra one
#    (a cache buster) hits the same object and joins the same coalesced fetch. Names are
#    matched as sent, never percent-decoded (%5FHLS_msn is another, ignored name), as the
#    origin reads them. Cookies are never part of a key (onair sets none).
#  - TTLs come from the origin's Cache-Control (playlists ~TD/2, master 3×TD, segments a
#    year, immutable; misses and 404s 1 s). Varnish keeps `Age`, so downstream CDNs count
#    the time already spent here.
#  - Request coalescing: concurrent misses for one object wait for a single origin fetch
#    (Varnish's waiting list); a 503 is never cached, so the waiting list is not stalled by it.
#  - Grace: while the origin is healthy, at most 2 s of staleness (a playlist may be served
#    while its refresh is fetched in the background); when the health probe says the origin
#    is down, recent objects are served for up to a minute (segments for an hour) instead of
#    errors.
#  - Short negative caching: 404 for 1 s at most, 5xx not at all.
#  - Progressive mounts (/{channel}-{rendition}.aac|.mp3) are piped: no caching, no buffering.
#  - Varnish's built-in rules still apply after ours: an answer with Cache-Control no-store,
#    no-cache or private, a Set-Cookie or Vary: * is never cached (e.g. /healthz).
#  - Admin endpoints (/metrics, /api/…, /ingest/…, /listeners.json, /admin/…) are refused
#    with a JSON 404: onair serves them on its admin listener (loopback, admin.port), never
#    on the origin port, and the public cache does not forward them.
#
# Point the backend at your origin (or a load balancer in front of several).
vcl 4.1;

import std;

probe onair_health {
    .url = "/healthz";
    .interval = 1s;
    .timeout = 500ms;
    .window = 3;
    .threshold = 2;
}

backend onair {
    .host = "127.0.0.1";
    .port = "8080";
    .probe = onair_health;
    .connect_timeout = 1s;
    .first_byte_timeout = 15s;   # LL-HLS blocking reloads are held up to 3 × TD
    .between_bytes_timeout = 5s;
}

sub vcl_recv {
    # Admin paths, in origin-form or absolute-form (http://host/metrics): refused here.
    if (req.url ~ "(?i)^(https?://[^/]*)?/+(metrics|api|ingest|admin|listeners\.json)([/?;#]|$)") {
        return (synth(404));
    }
    # Progressive mounts (/{channel}-{rendition}.aac|.mp3, Icecast style) are endless: piped,
    # never cached nor buffered, one backend connection per listener (the origin counts them).
    if (req.url ~ "^/[a-z0-9-]+\.(aac|mp3)(\?.*)?$") {
        return (pipe);
    }
    if (req.method != "GET" && req.method != "HEAD") {
        return (pass);
    }
    unset req.http.Cookie;
    set req.url = std.querysort(req.url);
    call onair_cache_key;
    if (std.healthy(req.backend_hint)) {
        set req.grace = 2s;
    }
    return (hash);
}

# X-Onair-Key: the path, then `?` and the known parameters (the URL is already sorted), or
# the path alone. Only the query is filtered: an `&` in the path stays part of the path.
sub onair_cache_key {
    set req.http.X-Onair-Key = regsub(req.url, "\?.*$", "");
    if (req.url ~ "\?") {
        set req.http.X-Onair-Query = regsuball(regsub(req.url, "^[^?]*\?", "&"),
            "&(?!(?:_HLS_msn|_HLS_part|_HLS_skip|token)(?:=|&|$))[^&]*", "");
        if (req.http.X-Onair-Query != "") {
            set req.http.X-Onair-Key = req.http.X-Onair-Key + regsub(req.http.X-Onair-Query, "^&", "?");
        }
        unset req.http.X-Onair-Query;
    }
    # signed.vcl (when included) keys a shared segment by its URL without the token: the
    # same without unknown parameters either.
    if (req.http.X-Onair-Segment-Key) {
        set req.http.X-Onair-Segment-Key = regsuball(req.http.X-Onair-Key, "([?&])token=[^&]*&?", "\1");
    }
}

sub vcl_hash {
    hash_data(req.http.X-Onair-Key);
    if (req.http.host) {
        hash_data(req.http.host);
    } else {
        hash_data(server.ip);
    }
    return (lookup);
}

sub vcl_backend_fetch {
    unset bereq.http.X-Onair-Key;
}

sub vcl_backend_response {
    if (beresp.status >= 500) {
        # Never pin an origin error; let the next request try again.
        set beresp.ttl = 0s;
        set beresp.grace = 0s;
        set beresp.uncacheable = true;
        return (deliver);
    }
    if (beresp.status == 404) {
        if (beresp.ttl > 1s) {
            set beresp.ttl = 1s;
        }
        set beresp.grace = 0s;
    } else if (bereq.url ~ "\.(ts|m4s|mp4|mp3)(\?|$)") {
        set beresp.grace = 1h;
    } else {
        set beresp.grace = 60s;
    }
    # No return: Varnish's built-in vcl_backend_response runs next, so no-store, no-cache,
    # private, Set-Cookie and Vary: * still make the answer uncacheable (hit-for-miss).
}

sub vcl_deliver {
    if (obj.hits > 0) {
        set resp.http.X-Cache = "HIT";
    } else {
        set resp.http.X-Cache = "MISS";
    }
}

sub vcl_synth {
    # The refusal of admin paths (vcl_recv), in the origin's JSON error shape.
    if (resp.status == 404) {
        set resp.http.Content-Type = "application/json; charset=utf-8";
        set resp.http.Cache-Control = "no-store";
        # (The space before the closing brace: "} would end VCL's long string.)
        set resp.body = {"{"error":"not_found","message":"no such resource" }"};
        return (deliver);
    }
}
