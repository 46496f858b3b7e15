#!/bin/sh
# Run a test binary with an X display: as is when DISPLAY is set, else under a private Xvfb.
# Xvfb -displayfd picks a free display number itself (atomically, through its lock file), which avoids
# xvfb-run -a's race when several test processes start at once. Test discovery needs no display.
case " $* " in
  *" --list-"*) exec "$@" ;;
esac
if [ -n "${DISPLAY:-}" ]; then
  exec "$@"
fi
if ! command -v Xvfb >/dev/null 2>&1; then
  echo "run_with_display.sh: DISPLAY is unset and Xvfb is not installed (apt-get install xvfb)" >&2
  exit 1
fi
numfile=$(mktemp) || exit 1
Xvfb -displayfd 3 -screen 0 1280x1024x24 -nolisten tcp 3>"$numfile" 2>/dev/null &
xvfb_pid=$!
i=0
while [ ! -s "$numfile" ] && [ $i -lt 200 ]; do
  if ! kill -0 "$xvfb_pid" 2>/dev/null; then break; fi
  sleep 0.05
  i=$((i + 1))
done
num=$(tr -dc '0-9' <"$numfile")
rm -f "$numfile"
if [ -z "$num" ]; then
  echo "run_with_display.sh: Xvfb did not start" >&2
  kill "$xvfb_pid" 2>/dev/null
  exit 1
fi
DISPLAY=":$num" "$@"
rc=$?
kill "$xvfb_pid" 2>/dev/null
wait "$xvfb_pid" 2>/dev/null
exit $rc
