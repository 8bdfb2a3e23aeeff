#!/bin/sh
# Makes a fresh clone runnable: Debian's ffmpeg and redis-server (and varnish, chromium, prometheus's promtool, VLC and icecast2 with --test),
# the npm dependencies, and the TypeScript build. Used by `npm start` and `npm test`; safe to run again.
# Where it cannot install (not root without sudo, not Debian/Ubuntu), it says exactly
# what to install and stops.
set -eu
cd "$(dirname "$0")/.."

missing=""
command -v ffmpeg >/dev/null 2>&1 || missing="$missing ffmpeg"
command -v ffprobe >/dev/null 2>&1 || case "$missing" in *ffmpeg*) ;; *) missing="$missing ffmpeg" ;; esac
command -v redis-server >/dev/null 2>&1 || missing="$missing redis-server"
# `setup.sh --test`: what the test suite needs besides (Varnish for the cache-layer test,
# Chromium for the player test, promtool from prometheus for the metrics test, strace for the
# recordings durability test).
if [ "${1:-}" = "--test" ]; then
  command -v varnishd >/dev/null 2>&1 || [ -x /usr/sbin/varnishd ] || missing="$missing varnish"
  command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
  command -v promtool >/dev/null 2>&1 || missing="$missing prometheus"
  command -v strace >/dev/null 2>&1 || missing="$missing strace"
  # VLC 3 for the VLC playback test (test/e2e/vlc.test.ts); cvlc comes with the base plugins.
  command -v cvlc >/dev/null 2>&1 || missing="$missing vlc-bin vlc-plugin-base"
  # cuetools (cueprint, cuebreakpoints) reads back the recordings' cue sheets (test/recording/session-chapters.test.ts).
  command -v cueprint >/dev/null 2>&1 || missing="$missing cuetools"
  # curl sends Icecast metadata updates with Basic auth, as scripts do (test/e2e/icecast-source.test.ts).
  command -v curl >/dev/null 2>&1 || missing="$missing curl"
  # icecast2 as a relay of an onair mount (test/e2e/icecast-relay.test.ts, bench:icecast).
  command -v icecast2 >/dev/null 2>&1 || missing="$missing icecast2"
  # python3 for the progressive test's stalled listener (a socket with a small MSS and receive buffer).
  command -v python3 >/dev/null 2>&1 || missing="$missing python3"
  # GStreamer's dashdemux (plugins-bad) with its MP4 demuxer (plugins-good) and AAC decoder (libav) reads the DASH MPD (test/e2e/dash.test.ts).
  command -v gst-launch-1.0 >/dev/null 2>&1 || missing="$missing gstreamer1.0-tools"
  gst-inspect-1.0 dashdemux >/dev/null 2>&1 || missing="$missing gstreamer1.0-plugins-bad"
  gst-inspect-1.0 qtdemux >/dev/null 2>&1 || missing="$missing gstreamer1.0-plugins-good"
  gst-inspect-1.0 avdec_aac >/dev/null 2>&1 || missing="$missing gstreamer1.0-libav"
  # certutil makes the NSS db in which Chromium trusts the HTTPS test's CA (test/e2e/tls.test.ts); openssl makes the CA.
  command -v certutil >/dev/null 2>&1 || missing="$missing libnss3-tools"
  command -v openssl >/dev/null 2>&1 || missing="$missing openssl"
  # A throw-away one-node Ceph (mon, memstore osd, radosgw) as the S3 server with ListParts (test/recording/s3-rgw.test.ts).
  # No daemon starts on install: the tests start their own in a temp dir on free loopback ports.
  command -v radosgw >/dev/null 2>&1 || missing="$missing radosgw"
  command -v ceph-mon >/dev/null 2>&1 || missing="$missing ceph-mon"
  command -v ceph-osd >/dev/null 2>&1 || missing="$missing ceph-osd"
fi
for extra in ${ONAIR_SETUP_EXTRA_PACKAGES:-}; do
  dpkg -s "$extra" >/dev/null 2>&1 || missing="$missing $extra"
done

if [ -n "$missing" ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "onair setup: this system has no apt-get. Install these yourself and run again:$missing" >&2
    exit 1
  fi
  if [ "$(id -u)" -eq 0 ]; then
    as_root=""
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root="sudo"
  else
    echo "onair setup: missing Debian packages:$missing" >&2
    echo "Install them with: sudo apt-get install -y$missing   (then run this command again)" >&2
    exit 1
  fi
  echo "onair setup: installing Debian packages:$missing"
  $as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -qq --no-install-recommends $missing >/dev/null
  # Debian's icecast2 starts a system service on port 8000 when installed: the tests and
  # bench:icecast run their own icecast2 on free loopback ports, so the one just installed is
  # stopped and kept from starting at boot.
  case "$missing" in *icecast2*)
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
      $as_root systemctl disable --now icecast2 >/dev/null 2>&1 || true
    else
      $as_root /etc/init.d/icecast2 stop >/dev/null 2>&1 || true
      $as_root update-rc.d icecast2 disable >/dev/null 2>&1 || true
    fi ;;
  esac
fi

# VLC and icecast2 refuse to run as root: the tests (and bench:icecast) run them as this unprivileged system user.
needs_test_user="${1:-}"
case " ${ONAIR_SETUP_EXTRA_PACKAGES:-} " in *" icecast2 "*) needs_test_user="--test" ;; esac
if [ "$needs_test_user" = "--test" ] && ! id onair-test >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ]; then
    useradd --system --no-create-home --shell /usr/sbin/nologin onair-test
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo useradd --system --no-create-home --shell /usr/sbin/nologin onair-test
  fi
fi

if ! ffmpeg -hide_banner -protocols 2>/dev/null | grep -qw srt; then
  echo "onair setup: this ffmpeg was built without SRT support; install Debian's ffmpeg package" >&2
  exit 1
fi

if [ ! -f node_modules/.package-lock.json ] || [ package.json -nt node_modules/.package-lock.json ]; then
  echo "onair setup: installing npm dependencies"
  npm install --no-audit --no-fund --loglevel=error
fi

npx tsc -p tsconfig.build.json
