# Protected channels (channels[].access: signed) behind Varnish: one cached copy of each
# segment for every listener, instead of one per token.
#
# Use: in default.vcl, right after `import std;` and before its `sub vcl_recv`, add
#
#     include "./signed.vcl";
#
# (`./` is relative to default.vcl. Varnish runs subroutines of the same name in the order
# it reads them, so this vcl_recv must come before default.vcl's, which ends in
# return (hash).) It needs vmod_digest (Debian: apt-get install varnish-vmod-digest) and the
# origin's signing.key in /etc/varnish/onair-signing.key, readable by varnishd (a trailing
# newline is ignored). Tested with Varnish 7.1 and vmod_digest 6.4.
# The key is read when the VCL is loaded: after changing it, reload the VCL.
#
# How it works:
#  - The origin stays the authority: it checks the token of every request it receives and
#    answers 403 (Cache-Control: no-store) to a bad one; this file never caches a 403.
#  - A segment, part or init segment (`.ts`, `.m4s`, `.mp4`; `.mp3` packed audio) whose token is valid here (the same checks as
#    src/origin/signed-urls.ts: signature, expiry, path prefix) is cached under its URL
#    without the token, in a key space of its own: every listener's valid token hits the
#    same object. A miss is fetched with the listener's token, so the origin checks it too.
#  - Everything else keeps the token in its cache key (default.vcl hashes the whole sorted
#    URL): a playlist carries its token on every URI, so it is cached per token, and a
#    request with no token, an expired or forged one, never reaches the shared segments:
#    it goes to the origin, which refuses it.
#  - Signed answers come with max-age capped at the token's remaining lifetime.
# Listeners who share a token (e.g. your backend mints one per channel and hour) also share
# the cached playlists.

import digest;
import std;

sub vcl_recv {
    unset req.http.X-Onair-Segment-Key;
    if (req.url ~ "^/[^?]+\.(ts|m4s|mp4|mp3)\?([^#]*&)?token=[1-9][0-9]{0,10}~[A-Za-z0-9_-]{2,342}~[A-Za-z0-9_-]{43}(&|$)") {
        call onair_share_signed_segment;
    }
}

# Sets X-Onair-Segment-Key (the URL without its token) when the token is valid for this path.
sub onair_share_signed_segment {
    set req.http.X-Onair-Token = regsub(req.url, "^.*[?&]token=([^&]*).*$", "\1");
    # HMAC-SHA256 over "<expiresAt>~<prefix>", base64url without padding. Both sides are
    # hashed again before comparing, so the comparison time tells nothing about the signature.
    if (digest.hash_sha256(digest.base64url_nopad_hex(digest.hmac_sha256(
            regsub(std.fileread("/etc/varnish/onair-signing.key"), "\s+$", ""),
            regsub(req.http.X-Onair-Token, "~[^~]*$", ""))))
        == digest.hash_sha256(regsub(req.http.X-Onair-Token, "^.*~", ""))) {
        set req.http.X-Onair-Path = regsub(req.url, "\?.*$", "");
        set req.http.X-Onair-Prefix = digest.base64url_nopad_decode(regsub(req.http.X-Onair-Token, "^[^~]*~([^~]*)~.*$", "\1"));
        if (std.integer(regsub(req.http.X-Onair-Token, "~.*$", ""), 0) > std.integer(time=now)
            && req.http.X-Onair-Prefix ~ "^/"
            && std.strstr(req.http.X-Onair-Path, req.http.X-Onair-Prefix) == req.http.X-Onair-Path
            && req.http.X-Onair-Path !~ "(^|/)\.\.?(/|$)|//|\\|%") {
            set req.http.X-Onair-Segment-Key = std.querysort(regsuball(req.url, "([?&])token=[^&]*&?", "\1"));
        }
    }
    unset req.http.X-Onair-Token;
    unset req.http.X-Onair-Path;
    unset req.http.X-Onair-Prefix;
}

sub vcl_hash {
    if (req.http.X-Onair-Segment-Key) {
        hash_data("onair-signed-segment");
        hash_data(req.http.X-Onair-Segment-Key);
        if (req.http.host) {
            hash_data(req.http.host);
        } else {
            hash_data(server.ip);
        }
        return (lookup);
    }
}

sub vcl_backend_fetch {
    unset bereq.http.X-Onair-Segment-Key;
}

sub vcl_backend_response {
    if (beresp.status == 403) {
        # A refusal is about one token: never serve it to another request.
        set beresp.ttl = 0s;
        set beresp.grace = 0s;
        set beresp.uncacheable = true;
        return (deliver);
    }
}
