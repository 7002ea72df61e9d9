#!/bin/sh
# Writes a private, loopback-only Janus 1.1 configuration (VideoRoom + HTTP only) into DIR from
# Debian's defaults in /etc/janus (package "janus"), for scripts/bench-vs-janus.sh.
# Usage: scripts/janus-config.sh DIR
#
# Why each edit:
#   interface = 127.0.0.1        else Janus advertises the machine's external address as local-ip
#   ice_enforce_list = "jlo"     libnice never gathers on an interface flagged LOOPBACK, so the
#                                bench gives Janus an ifb link "jlo" carrying 127.0.0.2 inside a
#                                private network namespace (see bench-vs-janus.sh)
#   ignore_mdns, rtp_port_range  no mDNS lookups; a fixed port range
#   plugins/transports/loggers   only videoroom and HTTP: a quicker start, fewer threads
#   http ip = 127.0.0.1          the REST API on http://127.0.0.1:8088/janus
set -e
D=${1:?usage: janus-config.sh DIR}
mkdir -p "$D"; D=$(cd "$D" && pwd)
for f in janus.jcfg janus.transport.http.jcfg janus.plugin.videoroom.jcfg; do cp "/etc/janus/$f" "$D/"; done
cd "$D"
sed -i -e 's|^\s*#interface = "1.2.3.4".*|\tinterface = "127.0.0.1"|' \
       -e "s|configs_folder = \"/etc/janus\"|configs_folder = \"$D\"|" \
       -e 's|^\s*#\?ice_enforce_list = "eth0"$|\tice_enforce_list = "jlo"|' \
       -e 's|^\s*#ignore_mdns = true|\tignore_mdns = true|' \
       -e 's|^\s*#rtp_port_range = "20000-40000"|\trtp_port_range = "20000-29999"|' \
       -e 's|^\s*#disable = "libjanus_jsonlog.so"|\tdisable = "libjanus_jsonlog.so"|' \
       -e 's|^\s*#disable = "libjanus_voicemail.so,libjanus_recordplay.so"|\tdisable = "libjanus_voicemail.so,libjanus_recordplay.so,libjanus_sip.so,libjanus_nosip.so,libjanus_audiobridge.so,libjanus_streaming.so,libjanus_textroom.so,libjanus_videocall.so,libjanus_echotest.so,libjanus_duktape.so,libjanus_lua.so"|' \
       -e 's|^\s*#disable = "libjanus_rabbitmq.so"|\tdisable = "libjanus_rabbitmq.so,libjanus_mqtt.so,libjanus_nanomsg.so,libjanus_pfunix.so,libjanus_websockets.so"|' \
       janus.jcfg
sed -i -e 's|^\s*#ip = "192.168.0.1".*|\tip = "127.0.0.1"|' janus.transport.http.jcfg
# Every edit must have matched: another Janus version may word its defaults differently.
for want in 'janus.jcfg:^\s*interface = "127.0.0.1"' "janus.jcfg:configs_folder = \"$D\"" 'janus.jcfg:^\s*ice_enforce_list = "jlo"' \
    'janus.jcfg:^\s*ignore_mdns = true' 'janus.jcfg:^\s*rtp_port_range = "20000-29999"' 'janus.jcfg:^\s*disable = "libjanus_jsonlog.so"' \
    'janus.jcfg:^\s*disable = "libjanus_voicemail.so' 'janus.jcfg:^\s*disable = "libjanus_rabbitmq.so' \
    'janus.transport.http.jcfg:^\s*ip = "127.0.0.1"'; do
  grep -q "${want#*:}" "${want%%:*}" || { echo "janus-config.sh: edit not applied: $want" >&2; exit 1; }
done
echo "janus config in $D"
