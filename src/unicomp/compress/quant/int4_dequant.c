/* Dequantize a CPU-packed int4 weight to a dense [in, out] matrix, for long-prompt prefill.

   Why a C kernel: the same arithmetic in PyTorch ops takes five passes over the weight with fp32
   temporaries (~3x slower), and at batch 1 that cost alone kept W4A16 prefill below bf16's speed.
   Built once per machine by unicomp.compress.quant.native with the system C compiler and loaded
   with ctypes; without a compiler unicomp falls back to the PyTorch version (same bits).

   Layout read (torch's _convert_weight_to_int4pack_for_cpu): per block of 64 output rows and per
   input column, 32 bytes; byte j holds row j (low nibble) and row j + 32 (high nibble).
   scale_and_zeros: [groups, out, 2] of (scale, zero_term) in the compute dtype.
   Value: q * scale + (zero_term - 8 * scale) in fp32, then one rounding to the compute dtype: the
   number the PyTorch version and the int4 kernel compute, as long as q * scale is exact in fp32
   (fused multiply-add or not), which packed._native_exact checks before calling. */
#include <stdint.h>
#include <string.h>

static inline float bf16_to_f32(uint16_t h) {
  uint32_t u = (uint32_t)h << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}

static inline uint16_t f32_to_bf16(float f) { /* round to nearest even, as torch does (no NaN here) */
  uint32_t u;
  memcpy(&u, &f, 4);
  u += 0x7FFFu + ((u >> 16) & 1u);
  return (uint16_t)(u >> 16);
}

#define DEQUANT_BODY(LOAD, STORE)                                                   \
  const int64_t blocks = n / 64;                                                    \
  _Pragma("omp parallel for schedule(static)")                                      \
  for (int64_t kk = 0; kk < k; kk++) {                                              \
    const int64_t row_sz = (kk / group) * n * 2;                                    \
    for (int64_t b = 0; b < blocks; b++) {                                          \
      const uint8_t* __restrict src = packed + (b * k + kk) * 32;                   \
      const int64_t s = row_sz + b * 128, o = kk * n + b * 64;                      \
      for (int j = 0; j < 32; j++) {                                                \
        const float s0 = LOAD(sz[s + 2 * j]), z0 = LOAD(sz[s + 2 * j + 1]);         \
        const float s1 = LOAD(sz[s + 2 * j + 64]), z1 = LOAD(sz[s + 2 * j + 65]);   \
        out[o + j] = STORE((float)(src[j] & 15) * s0 + (z0 - 8.0f * s0));           \
        out[o + j + 32] = STORE((float)(src[j] >> 4) * s1 + (z1 - 8.0f * s1));      \
      }                                                                             \
    }                                                                               \
  }

#define AS_FLOAT(x) (x)

#if defined(__AVX512F__) && defined(__AVX512BF16__)
#include <immintrin.h>

/* The same arithmetic on AVX-512, ~3x faster than the compiler's vectorization of the loop above:
   a 64-row block's scales and zero terms stay in registers for all the columns of its group, codes
   widen 16 at a time, and vcvtne2ps2bf16 rounds to bf16 (to nearest even, like the scalar path,
   but flushing subnormals to zero: unicomp sends no weight with a scale below 2^-100 here, see
   packed._native_exact). */
static inline void store_bf16(uint16_t* o, const __m512* r) {
  _mm512_storeu_si512((void*)o, (__m512i)_mm512_cvtne2ps_pbh(r[1], r[0]));
  _mm512_storeu_si512((void*)(o + 32), (__m512i)_mm512_cvtne2ps_pbh(r[3], r[2]));
}

void unicomp_int4_dequant_bf16(const uint8_t* __restrict packed, const uint16_t* __restrict sz,
                               uint16_t* __restrict out, int64_t n, int64_t k, int64_t group) {
  const int64_t blocks = n / 64, groups = k / group;
  #pragma omp parallel for collapse(2) schedule(static)
  for (int64_t gi = 0; gi < groups; gi++) {
    for (int64_t b = 0; b < blocks; b++) {
      __m512 s[4], zp[4];
      for (int i = 0; i < 4; i++) { /* 16 (scale, zero_term) bf16 pairs: rows b * 64 + 16 i ... */
        const __m512i pair = _mm512_loadu_si512((const void*)(sz + (gi * n + b * 64 + 16 * i) * 2));
        s[i] = _mm512_castsi512_ps(_mm512_slli_epi32(pair, 16));
        const __m512 z = _mm512_castsi512_ps(_mm512_and_si512(pair, _mm512_set1_epi32((int)0xFFFF0000u)));
        zp[i] = _mm512_fmadd_ps(_mm512_set1_ps(-8.0f), s[i], z); /* 8 s is exact: one rounding, as in torch */
      }
      for (int64_t kk = gi * group; kk < (gi + 1) * group; kk++) {
        const uint8_t* src = packed + (b * k + kk) * 32;
        const __m512i lo = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)src));  /* rows 0-15, 32-47 */
        const __m512i hi = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)(src + 16)));  /* 16-31, 48-63 */
        const __m512i mask = _mm512_set1_epi32(15);
        __m512 r[4];
        r[0] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_and_si512(lo, mask)), s[0], zp[0]);
        r[1] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_and_si512(hi, mask)), s[1], zp[1]);
        r[2] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32(lo, 4)), s[2], zp[2]);
        r[3] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32(hi, 4)), s[3], zp[3]);
        store_bf16(out + kk * n + b * 64, r);
      }
    }
  }
}

#else

void unicomp_int4_dequant_bf16(const uint8_t* __restrict packed, const uint16_t* __restrict sz,
                               uint16_t* __restrict out, int64_t n, int64_t k, int64_t group) {
  DEQUANT_BODY(bf16_to_f32, f32_to_bf16)
}

#endif

/* fp32 compute dtype (CPUs without bf16 support): the portable loop, auto-vectorized */
void unicomp_int4_dequant_f32(const uint8_t* __restrict packed, const float* __restrict sz,
                              float* __restrict out, int64_t n, int64_t k, int64_t group) {
  DEQUANT_BODY(AS_FLOAT, AS_FLOAT)
}
