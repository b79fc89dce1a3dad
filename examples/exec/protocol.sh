#!/bin/sh
# Says which subprotocol the client and uvws agreed on (--exec-protocol);
# "none" when the client offered none the route speaks.
echo "protocol: ${UVWS_PROTOCOL-none}"
