/* A binary backend in C: every byte that arrives goes back with bit 5
 * flipped (so ASCII letters change case), as soon as it is read.
 *
 *   cc -O2 -o build/xor examples/exec/xor.c
 *   uvws --exec-binary /xor=build/xor
 *
 * On --exec-binary routes there is no framing: each binary (or text)
 * message is written to stdin as it is, and each read() of our stdout
 * becomes one binary message. Plain read() and write() on file descriptors
 * 0 and 1: no stdio buffer sits between us and the client. */
#include <unistd.h>

int main(void) {
  unsigned char buf[65536];
  ssize_t n, i, done, w;
  while ((n = read(0, buf, sizeof(buf))) > 0) {
    for (i = 0; i < n; i++) buf[i] ^= 0x20;
    for (done = 0; done < n; done += w)
      if ((w = write(1, buf + done, (size_t)(n - done))) < 0) return 1;
  }
  return 0; /* stdin closed: the client left */
}
