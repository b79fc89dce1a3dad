#!/bin/sh
# Counts to 5, one line (one WebSocket message) every half second, then
# exits 0, which closes the connection with 1000.
#   uvws --exec /count='sh examples/exec/counter.sh'
i=1
while [ "$i" -le 5 ]; do
  echo "$i"
  i=$((i + 1))
  sleep 0.5
done
