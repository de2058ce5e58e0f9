/* memcpy/memset/memmove/strlen for the functional build, which links no C library (picolibc ships no
 * rv32imac_zicsr multilib; only its headers are used). Word loops when both pointers are word-aligned. */
#include <stddef.h>
#include <stdint.h>

void *memcpy(void *dst, const void *src, size_t n) {
  uint8_t *d = dst;
  const uint8_t *s = src;
  if ((((uintptr_t)d | (uintptr_t)s) & 3) == 0) {
    for (; n >= 4; n -= 4, d += 4, s += 4) *(uint32_t *)d = *(const uint32_t *)s;
  }
  while (n--) *d++ = *s++;
  return dst;
}

void *memmove(void *dst, const void *src, size_t n) {
  uint8_t *d = dst;
  const uint8_t *s = src;
  if (d < s) return memcpy(dst, src, n);
  while (n--) d[n] = s[n];
  return dst;
}

void *memset(void *dst, int c, size_t n) {
  uint8_t *d = dst;
  uint32_t w = (uint8_t)c * 0x01010101u;
  while (n && ((uintptr_t)d & 3)) *d++ = (uint8_t)c, n--;
  for (; n >= 4; n -= 4, d += 4) *(uint32_t *)d = w;
  while (n--) *d++ = (uint8_t)c;
  return dst;
}

size_t strlen(const char *s) {
  size_t n = 0;
  while (s[n]) n++;
  return n;
}
