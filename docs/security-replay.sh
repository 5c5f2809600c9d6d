#!/usr/bin/env bash
# Replays the attacks of issue 14 against a real vigil serve on loopback and
# prints what the server answered; docs/security.md says what to expect.
# Usage: bash docs/security-replay.sh   (needs go, curl and python3; port 18577)
set -u
cd "$(dirname "$0")/.."
SP=
W=$(mktemp -d) # the binary, the data dir and the answers; removed at the end
trap 'kill $SP 2>/dev/null; rm -rf "$W"' EXIT
go build -o $W/vigil ./cmd/vigil || exit 1
D=$W/data; rm -rf $D; mkdir -p $D; chmod 755 $D
P=18577; U=http://127.0.0.1:$P; V=$W/vigil
$V serve --data-dir $D --listen 127.0.0.1:$P --insecure-http > $W/stdout 2> $W/stderr &
SP=$!
for i in $(seq 50); do curl -s $U/readyz >/dev/null && break; sleep 0.2; done
ADMIN=$(cat $D/admin-token)
echo "1. bootstrap token in the log? $(grep -c "$ADMIN" $W/stderr) lines; in stdout: $(grep -c "$ADMIN" $W/stdout); admin-token mode $(stat -c %a $D/admin-token); data dir mode $(stat -c %a $D); vigil.db mode $(stat -c %a $D/vigil.db)"
mk() { curl -s -H 'Content-Type: application/json' -H "Authorization: Bearer $ADMIN" -d "{\"name\":\"$1\",\"role\":\"$2\"}" $U/api/v1/tokens | python3 -c 'import sys,json; print(json.load(sys.stdin)["token"])'; }
AN=$(mk ann analyst); VW=$(mk vic viewer); AG=$(mk fleet agent)
echo "2. analyst imports pki/ca.key as a feed:"; curl -s -H 'Content-Type: application/json' -H "Authorization: Bearer $AN" -d '{"feed":{"name":"x","source":"pki/ca.key","format":"list"}}' $U/api/v1/intel/feeds; echo
echo "   ... as file:// :"; curl -s -H 'Content-Type: application/json' -H "Authorization: Bearer $AN" -d "{\"feed\":{\"name\":\"x\",\"source\":\"file://$D/pki/ca.key\",\"format\":\"list\"}}" $U/api/v1/intel/feeds; echo
echo "   ... uploaded as content (does the answer quote it?): $(curl -s -H 'Content-Type: application/json' -H "Authorization: Bearer $AN" --data-binary @<(python3 -c "import json;print(json.dumps({'feed':{'name':'y','format':'list'},'content':open('$D/pki/ca.key').read()}))") $U/api/v1/intel/feeds | grep -c 'PRIVATE KEY\|MHcC') answers quoting key material"
echo "3. SSRF to the server itself and to metadata, with a token:"; curl -s -H 'Content-Type: application/json' -H "Authorization: Bearer $AN" -d "{\"feed\":{\"name\":\"z\",\"source\":\"$U/api/v1/devices\",\"format\":\"list\"}}" $U/api/v1/intel/feeds; echo
curl -s -H 'Content-Type: application/json' -H "Authorization: Bearer $AN" -d '{"feed":{"name":"m","source":"http://169.254.169.254/latest/meta-data/","format":"list"}}' $U/api/v1/intel/feeds; echo
echo "4. viewer reads feeds (tokens shown?):"; curl -s -H 'Content-Type: application/json' -H "Authorization: Bearer $AN" -d '{"feed":{"name":"withtok","format":"list"},"content":"203.0.113.9\n"}' $U/api/v1/intel/feeds >/dev/null; curl -s -H 'Content-Type: application/json' -H "Authorization: Bearer $VW" $U/api/v1/intel/feeds | head -c 400; echo
echo "5. bulk: source agent, provenance in the body, a 9999 date, a bearer token on a command line:"
NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)
printf '%s\n' "{\"time\":\"$NOW\",\"device_id\":\"cam-9\",\"kind\":\"auth\",\"source\":\"agent\"}" "{\"time\":\"$NOW\",\"device_id\":\"cam-9\",\"kind\":\"auth\",\"provenance\":\"device-cert:cam-9\"}" "{\"time\":\"9999-12-31T00:00:00Z\",\"device_id\":\"cam-9\",\"kind\":\"auth\"}" "{\"time\":\"$NOW\",\"device_id\":\"cam-9\",\"kind\":\"process\",\"fields\":{\"process.command_line\":\"curl -H 'Authorization: Bearer vgl_secretsecret' https://admin:hunter2@x.example/\"}}" | curl -s -H 'Content-Type: application/x-ndjson' -H "Authorization: Bearer $AG" --data-binary @- $U/api/v1/events; echo
sleep 2; echo "   viewer reads the stored command line:"; curl -s -H 'Content-Type: application/json' -H "Authorization: Bearer $VW" "$U/api/v1/events?device=cam-9&kind=process" | grep -o '"process.command_line":"[^"]*"'
echo "6. 12 MiB of {} lines: answer size and rejections kept"; python3 -c "import sys; sys.stdout.write('{}\n'*(4<<20))" > $W/big; curl -s -H 'Content-Type: application/x-ndjson' -H "Authorization: Bearer $AG" --data-binary @$W/big $U/api/v1/events -o $W/bigans -w "status %{http_code}, %{size_download} bytes\n"; python3 -c "import json;d=json.load(open('$W/bigans'));print({k:(len(v) if isinstance(v,list) else v) for k,v in d.items()})" 2>/dev/null | head -c 300; echo; echo "   server RSS $(grep VmRSS /proc/$SP/status)"
echo "7. 100 bad tokens from one address:"; for i in $(seq 100); do curl -s -o /dev/null -w "%{http_code}\n" -H "Authorization: Bearer vgl_bad$i" $U/api/v1/devices; done | sort | uniq -c
echo "   a good token from 127.0.0.2 meanwhile: $(curl -s -o /dev/null -w '%{http_code}' --interface 127.0.0.2 -H "Authorization: Bearer $VW" http://127.0.0.1:$P/api/v1/devices)"
sleep 3; echo "8. help shows the token? $(VIGIL_TOKEN=$ADMIN $V ctl --help 2>&1 | grep -c "$ADMIN")"
echo "9. command to a device that does not exist (analyst):"; curl -s -H 'Content-Type: application/json' -H "Authorization: Bearer $AN" -d '{"action":"isolate"}' $U/api/v1/devices/ghost-1/commands; echo
echo "10. audit verify against the running server:"; VIGIL_SERVER=$U VIGIL_TOKEN=$ADMIN $V audit verify 2>&1 | tail -2
echo "    audit records of this session (action, outcome):"; curl -s -H 'Content-Type: application/json' -H "Authorization: Bearer $ADMIN" "$U/api/v1/audit?limit=200" | python3 -c "import sys,json,collections; d=json.load(sys.stdin); d=next((v for v in d.values() if isinstance(v,list)),[]) if isinstance(d,dict) else d; print(collections.Counter((r['action'],r.get('outcome','')) for r in d).most_common(12))"
kill -TERM $SP; T0=$(date +%s.%N); wait $SP; echo "11. SIGTERM: exit $? after $(python3 -c "print(round($(date +%s.%N)-$T0,2))") s; stop lines: $(grep -c 'component=serve' $W/stderr)"
grep 'component=serve' $W/stderr | tail -6 | cut -c1-160
