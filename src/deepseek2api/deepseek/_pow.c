/*
 * DeepSeekHashV1 proof-of-work: hash and nonce search (CPython extension, limited API / abi3).
 *
 * DeepSeekHashV1 is SHA3-256 with Keccak-p[1600, 23] (round indices 1..23; see shared/pow/README.md).
 * The search answers "first n in [start, difficulty) with H(prefix + str(n)) == target". Why it is
 * written this way:
 *   - the prefix's whole 136-byte blocks are absorbed once into a midstate;
 *   - nonces are walked per digit count, so within one group the padded last block is a fixed
 *     template in which only the 1-3 lanes holding the digits change (decimal digits are
 *     incremented in place, no formatting per nonce);
 *   - the 23 rounds are fully unrolled over named lanes, written once as macros over a lane type,
 *     so the same code is compiled for plain uint64_t and, with GCC/Clang, for vectors of 2/4/8
 *     lanes (8 nonces per permutation under AVX-512); the widest kernel the CPU supports is picked
 *     at import, so the shipped build needs no -march flag;
 *   - layouts where digits or padding spill into a second block (prefixes >= ~120 bytes) take a
 *     plain per-nonce path: correct, rarely used;
 *   - the GIL is released during the search; concurrent searches (one per stride) can share an
 *     int64 "best answer so far" buffer, so a thread stops once every nonce it could still find
 *     is larger than an answer another thread already found — the smallest answer wins.
 */
#define Py_LIMITED_API 0x030B0000
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <string.h>

#if defined(_MSC_VER) && !defined(__clang__)
#include <intrin.h>
#endif

#define RATE 136
#define RATE_LANES 17
#define DIGEST_BYTES 32
#define NONCE_LIMIT ((uint64_t)1 << 53) /* difficulty must be below 2**53: at most 16 digits */

#if defined(__GNUC__) || defined(__clang__)
#define HAVE_VECTOR_EXT 1
#else
#define HAVE_VECTOR_EXT 0
#endif

#if HAVE_VECTOR_EXT && (defined(__x86_64__) || defined(__i386__))
#define HAVE_X86_KERNELS 1
#else
#define HAVE_X86_KERNELS 0
#endif

static const uint64_t POW10[17] = {
    1ULL, 10ULL, 100ULL, 1000ULL, 10000ULL, 100000ULL, 1000000ULL, 10000000ULL, 100000000ULL,
    1000000000ULL, 10000000000ULL, 100000000000ULL, 1000000000000ULL, 10000000000000ULL,
    100000000000000ULL, 1000000000000000ULL, 10000000000000000ULL,
};

static inline uint64_t load64_le(const uint8_t *p)
{
    return (uint64_t)p[0] | ((uint64_t)p[1] << 8) | ((uint64_t)p[2] << 16) | ((uint64_t)p[3] << 24) |
           ((uint64_t)p[4] << 32) | ((uint64_t)p[5] << 40) | ((uint64_t)p[6] << 48) |
           ((uint64_t)p[7] << 56);
}

static inline void store64_le(uint8_t *p, uint64_t v)
{
    int i;
    for (i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

/* ---------------------------------------------------------------------------------------------
 * Keccak-p[1600, 23]. Lane (x, y) is s{x + 5y}. The lane operations are macros so the rounds
 * below work for uint64_t and for GCC/Clang vectors of uint64_t alike.
 */
#define XOR(a, b) ((a) ^ (b))
#define XOR5(a, b, c, d, e) ((a) ^ (b) ^ (c) ^ (d) ^ (e))
#define ANDN(a, b) (~(a) & (b))
#define ROL(a, n) (((a) << (n)) | ((a) >> (64 - (n))))
#define RCONST(rc) ((uint64_t)(rc))

/* Round constants of Keccak-f rounds 1..23 (round 0, 0x0000000000000001, is not used). */
#define RC1 0x0000000000008082ULL
#define RC2 0x800000000000808AULL
#define RC3 0x8000000080008000ULL
#define RC4 0x000000000000808BULL
#define RC5 0x0000000080000001ULL
#define RC6 0x8000000080008081ULL
#define RC7 0x8000000000008009ULL
#define RC8 0x000000000000008AULL
#define RC9 0x0000000000000088ULL
#define RC10 0x0000000080008009ULL
#define RC11 0x000000008000000AULL
#define RC12 0x000000008000808BULL
#define RC13 0x800000000000008BULL
#define RC14 0x8000000000008089ULL
#define RC15 0x8000000000008003ULL
#define RC16 0x8000000000008002ULL
#define RC17 0x8000000000000080ULL
#define RC18 0x000000000000800AULL
#define RC19 0x800000008000000AULL
#define RC20 0x8000000080008081ULL
#define RC21 0x8000000000008080ULL
#define RC22 0x0000000080000001ULL
#define RC23 0x8000000080008008ULL

/* Theta's column parities (c) and the values each column is XORed with (d); both rounds start so. */
#define KECCAK_THETA() \
    do { \
    c0 = XOR5(s0, s5, s10, s15, s20); \
    c1 = XOR5(s1, s6, s11, s16, s21); \
    c2 = XOR5(s2, s7, s12, s17, s22); \
    c3 = XOR5(s3, s8, s13, s18, s23); \
    c4 = XOR5(s4, s9, s14, s19, s24); \
    d0 = XOR(c4, ROL(c1, 1)); \
    d1 = XOR(c0, ROL(c2, 1)); \
    d2 = XOR(c1, ROL(c3, 1)); \
    d3 = XOR(c2, ROL(c4, 1)); \
    d4 = XOR(c3, ROL(c0, 1)); \
    } while (0)

/* One round: theta, rho + pi (into b), chi (back into s), iota. */
#define KECCAK_ROUND(rc) \
    do { \
    KECCAK_THETA(); \
    b0 = XOR(s0, d0); \
    b1 = ROL(XOR(s6, d1), 44); \
    b2 = ROL(XOR(s12, d2), 43); \
    b3 = ROL(XOR(s18, d3), 21); \
    b4 = ROL(XOR(s24, d4), 14); \
    b5 = ROL(XOR(s3, d3), 28); \
    b6 = ROL(XOR(s9, d4), 20); \
    b7 = ROL(XOR(s10, d0), 3); \
    b8 = ROL(XOR(s16, d1), 45); \
    b9 = ROL(XOR(s22, d2), 61); \
    b10 = ROL(XOR(s1, d1), 1); \
    b11 = ROL(XOR(s7, d2), 6); \
    b12 = ROL(XOR(s13, d3), 25); \
    b13 = ROL(XOR(s19, d4), 8); \
    b14 = ROL(XOR(s20, d0), 18); \
    b15 = ROL(XOR(s4, d4), 27); \
    b16 = ROL(XOR(s5, d0), 36); \
    b17 = ROL(XOR(s11, d1), 10); \
    b18 = ROL(XOR(s17, d2), 15); \
    b19 = ROL(XOR(s23, d3), 56); \
    b20 = ROL(XOR(s2, d2), 62); \
    b21 = ROL(XOR(s8, d3), 55); \
    b22 = ROL(XOR(s14, d4), 39); \
    b23 = ROL(XOR(s15, d0), 41); \
    b24 = ROL(XOR(s21, d1), 2); \
    s0 = XOR(b0, ANDN(b1, b2)); \
    s1 = XOR(b1, ANDN(b2, b3)); \
    s2 = XOR(b2, ANDN(b3, b4)); \
    s3 = XOR(b3, ANDN(b4, b0)); \
    s4 = XOR(b4, ANDN(b0, b1)); \
    s5 = XOR(b5, ANDN(b6, b7)); \
    s6 = XOR(b6, ANDN(b7, b8)); \
    s7 = XOR(b7, ANDN(b8, b9)); \
    s8 = XOR(b8, ANDN(b9, b5)); \
    s9 = XOR(b9, ANDN(b5, b6)); \
    s10 = XOR(b10, ANDN(b11, b12)); \
    s11 = XOR(b11, ANDN(b12, b13)); \
    s12 = XOR(b12, ANDN(b13, b14)); \
    s13 = XOR(b13, ANDN(b14, b10)); \
    s14 = XOR(b14, ANDN(b10, b11)); \
    s15 = XOR(b15, ANDN(b16, b17)); \
    s16 = XOR(b16, ANDN(b17, b18)); \
    s17 = XOR(b17, ANDN(b18, b19)); \
    s18 = XOR(b18, ANDN(b19, b15)); \
    s19 = XOR(b19, ANDN(b15, b16)); \
    s20 = XOR(b20, ANDN(b21, b22)); \
    s21 = XOR(b21, ANDN(b22, b23)); \
    s22 = XOR(b22, ANDN(b23, b24)); \
    s23 = XOR(b23, ANDN(b24, b20)); \
    s24 = XOR(b24, ANDN(b20, b21)); \
    s0 = XOR(s0, RCONST(rc)); \
    } while (0)

#define KECCAK_LAST_ROUND_LANES_0_3(rc) \
    do { \
    KECCAK_THETA(); \
    b0 = XOR(s0, d0); \
    b1 = ROL(XOR(s6, d1), 44); \
    b2 = ROL(XOR(s12, d2), 43); \
    b3 = ROL(XOR(s18, d3), 21); \
    b4 = ROL(XOR(s24, d4), 14); \
    s0 = XOR(b0, ANDN(b1, b2)); \
    s1 = XOR(b1, ANDN(b2, b3)); \
    s2 = XOR(b2, ANDN(b3, b4)); \
    s3 = XOR(b3, ANDN(b4, b0)); \
    s0 = XOR(s0, RCONST(rc)); \
    } while (0)


#define KECCAK_LOCALS(T)                                                                          \
    T s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, s10, s11, s12, s13, s14, s15, s16, s17, s18, s19, s20, \
        s21, s22, s23, s24;                                                                         \
    T b0, b1, b2, b3, b4, b5, b6, b7, b8, b9, b10, b11, b12, b13, b14, b15, b16, b17, b18, b19, b20, \
        b21, b22, b23, b24;                                                                         \
    T c0, c1, c2, c3, c4, d0, d1, d2, d3, d4

#define KECCAK_LOAD(src)                                                                          \
    do {                                                                                           \
        s0 = (src)[0]; s1 = (src)[1]; s2 = (src)[2]; s3 = (src)[3]; s4 = (src)[4];                 \
        s5 = (src)[5]; s6 = (src)[6]; s7 = (src)[7]; s8 = (src)[8]; s9 = (src)[9];                 \
        s10 = (src)[10]; s11 = (src)[11]; s12 = (src)[12]; s13 = (src)[13]; s14 = (src)[14];       \
        s15 = (src)[15]; s16 = (src)[16]; s17 = (src)[17]; s18 = (src)[18]; s19 = (src)[19];       \
        s20 = (src)[20]; s21 = (src)[21]; s22 = (src)[22]; s23 = (src)[23]; s24 = (src)[24];       \
    } while (0)

#define KECCAK_STORE(dst)                                                                         \
    do {                                                                                           \
        (dst)[0] = s0; (dst)[1] = s1; (dst)[2] = s2; (dst)[3] = s3; (dst)[4] = s4;                 \
        (dst)[5] = s5; (dst)[6] = s6; (dst)[7] = s7; (dst)[8] = s8; (dst)[9] = s9;                 \
        (dst)[10] = s10; (dst)[11] = s11; (dst)[12] = s12; (dst)[13] = s13; (dst)[14] = s14;       \
        (dst)[15] = s15; (dst)[16] = s16; (dst)[17] = s17; (dst)[18] = s18; (dst)[19] = s19;       \
        (dst)[20] = s20; (dst)[21] = s21; (dst)[22] = s22; (dst)[23] = s23; (dst)[24] = s24;       \
    } while (0)

#define KECCAK_ROUNDS_1_TO_22                                                                     \
    KECCAK_ROUND(RC1); KECCAK_ROUND(RC2); KECCAK_ROUND(RC3); KECCAK_ROUND(RC4);                    \
    KECCAK_ROUND(RC5); KECCAK_ROUND(RC6); KECCAK_ROUND(RC7); KECCAK_ROUND(RC8);                    \
    KECCAK_ROUND(RC9); KECCAK_ROUND(RC10); KECCAK_ROUND(RC11); KECCAK_ROUND(RC12);                 \
    KECCAK_ROUND(RC13); KECCAK_ROUND(RC14); KECCAK_ROUND(RC15); KECCAK_ROUND(RC16);                \
    KECCAK_ROUND(RC17); KECCAK_ROUND(RC18); KECCAK_ROUND(RC19); KECCAK_ROUND(RC20);                \
    KECCAK_ROUND(RC21); KECCAK_ROUND(RC22)

/* The full permutation on a state array (hashing, midstates, the per-nonce fallback path). */
static void keccak_p23(uint64_t st[25])
{
    KECCAK_LOCALS(uint64_t);
    KECCAK_LOAD(st);
    KECCAK_ROUNDS_1_TO_22;
    KECCAK_ROUND(RC23);
    KECCAK_STORE(st);
}

static void absorb_block(uint64_t st[25], const uint8_t *block)
{
    int i;
    for (i = 0; i < RATE_LANES; i++) {
        st[i] ^= load64_le(block + 8 * i);
    }
}

/* H(data) into 32 bytes: absorb the whole blocks, then the padded remainder, which (0..135 bytes
 * plus at least one padding byte) always fits in exactly one more block. */
static void hash_bytes(const uint8_t *data, size_t len, uint8_t out[DIGEST_BYTES])
{
    uint64_t st[25];
    uint8_t block[RATE];
    int i;
    memset(st, 0, sizeof st);
    while (len >= RATE) {
        absorb_block(st, data);
        keccak_p23(st);
        data += RATE;
        len -= RATE;
    }
    memset(block, 0, RATE);
    if (len) {
        memcpy(block, data, len);
    }
    block[len] ^= 0x06;
    block[RATE - 1] ^= 0x80;
    absorb_block(st, block);
    keccak_p23(st);
    for (i = 0; i < DIGEST_BYTES / 8; i++) {
        store64_le(out + 8 * i, st[i]);
    }
}

/* ---------------------------------------------------------------------------------------------
 * The shared "best answer so far" (an int64 another search may lower concurrently).
 */
static inline int64_t best_get(const int64_t *best)
{
    if (!best) {
        return INT64_MAX;
    }
#if defined(__GNUC__) || defined(__clang__)
    return __atomic_load_n(best, __ATOMIC_RELAXED);
#else
    return *(const volatile int64_t *)best;
#endif
}

/* Search no further than min(end, best): nonces at or above an answer already found are moot. */
static inline uint64_t best_limit(const int64_t *best, uint64_t end)
{
    int64_t value = best_get(best);
    if (value < 0) {
        return 0;
    }
    return (uint64_t)value < end ? (uint64_t)value : end;
}

static inline void best_lower(int64_t *best, int64_t value)
{
    if (!best) {
        return;
    }
#if defined(__GNUC__) || defined(__clang__)
    {
        int64_t cur = __atomic_load_n(best, __ATOMIC_RELAXED);
        while (value < cur &&
               !__atomic_compare_exchange_n(best, &cur, value, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
        }
    }
#elif defined(_MSC_VER)
    {
        int64_t cur = *(volatile int64_t *)best;
        while (value < cur) {
            int64_t seen = _InterlockedCompareExchange64((volatile __int64 *)best, value, cur);
            if (seen == cur) {
                break;
            }
            cur = seen;
        }
    }
#else
    if (value < *(volatile int64_t *)best) {
        *(volatile int64_t *)best = value;
    }
#endif
}

/* ---------------------------------------------------------------------------------------------
 * Nonce bookkeeping.
 */
typedef struct {
    uint64_t mid[25];     /* state after the prefix's whole 136-byte blocks */
    uint8_t tail[RATE];   /* the prefix bytes after those blocks */
    size_t tail_len;      /* 0..135 */
    uint64_t target[4];   /* the wanted digest as lanes 0..3 */
} search_ctx;

static void ctx_init(search_ctx *ctx, const uint8_t *prefix, size_t len, const uint8_t *target)
{
    int i;
    memset(ctx->mid, 0, sizeof ctx->mid);
    while (len >= RATE) {
        absorb_block(ctx->mid, prefix);
        keccak_p23(ctx->mid);
        prefix += RATE;
        len -= RATE;
    }
    memset(ctx->tail, 0, RATE);
    if (len) {
        memcpy(ctx->tail, prefix, len);
    }
    ctx->tail_len = len;
    for (i = 0; i < 4; i++) {
        ctx->target[i] = load64_le(target + 8 * i);
    }
}

static unsigned count_digits(uint64_t n)
{
    unsigned k = 1;
    while (k < 16 && n >= POW10[k]) {
        k++;
    }
    return k;
}

static void write_digits(uint8_t *dst, uint64_t n, unsigned k)
{
    while (k > 0) {
        dst[--k] = (uint8_t)('0' + n % 10);
        n /= 10;
    }
}

/* Add `step` to the k decimal digits at dst. A carry out of the top digit is dropped: that only
 * happens once the nonce has left the current digit-count group, whose template is then rebuilt. */
static inline void add_digits(uint8_t *dst, unsigned k, uint64_t step)
{
    uint64_t carry = step;
    while (carry && k > 0) {
        uint64_t v = (uint64_t)(dst[--k] - '0') + carry;
        dst[k] = (uint8_t)('0' + v % 10);
        carry = v / 10;
    }
}

/* Any layout, one nonce at a time: the tail + digits + padding may take one or two blocks. */
static int check_nonce(const search_ctx *ctx, uint64_t n)
{
    uint8_t buf[2 * RATE];
    uint64_t st[25];
    unsigned k = count_digits(n);
    size_t len = ctx->tail_len + k;
    size_t total = (len / RATE + 1) * RATE;
    size_t off;
    memset(buf, 0, total);
    memcpy(buf, ctx->tail, ctx->tail_len);
    write_digits(buf + ctx->tail_len, n, k);
    buf[len] ^= 0x06;
    buf[total - 1] ^= 0x80;
    memcpy(st, ctx->mid, sizeof st);
    for (off = 0; off < total; off += RATE) {
        absorb_block(st, buf + off);
        keccak_p23(st);
    }
    return st[0] == ctx->target[0] && st[1] == ctx->target[1] && st[2] == ctx->target[2] &&
           st[3] == ctx->target[3];
}

static int64_t search_generic(const search_ctx *ctx, uint64_t n, uint64_t end, uint64_t step,
                              int64_t *best)
{
    for (; n < end; n += step) {
        if (n >= best_limit(best, end)) {
            return -1;
        }
        if (check_nonce(ctx, n)) {
            best_lower(best, (int64_t)n);
            return (int64_t)n;
        }
    }
    return -1;
}

/* ---------------------------------------------------------------------------------------------
 * Single-block kernels: nonces n, n+step, ... < end, all with k digits, tail_len + k <= 135.
 * W nonces per permutation; VT is uint64_t (W = 1) or a vector of W uint64_t.
 */
typedef int64_t (*kernel_fn)(const search_ctx *ctx, uint64_t n, uint64_t end, uint64_t step,
                             unsigned k, int64_t *best);

#define DEFINE_KERNEL(NAME, VT, W, ATTR)                                                     \
    ATTR static int64_t NAME(const search_ctx *ctx, uint64_t n, uint64_t end, uint64_t step, \
                             unsigned k, int64_t *best)                                      \
    {                                                                                        \
        uint8_t blk[RATE];                                                                   \
        uint64_t var[3][W], out[4][W], nonce[W];                                             \
        VT lane[25], zero;                                                                   \
        const size_t t = ctx->tail_len;                                                      \
        const unsigned lo = (unsigned)(t / 8), nv = (unsigned)((t + k - 1) / 8 - t / 8 + 1); \
        unsigned i, j, v, cnt;                                                               \
        KECCAK_LOCALS(VT);                                                                   \
        memset(&zero, 0, sizeof zero);                                                       \
        memset(blk, 0, RATE);                                                                \
        memcpy(blk, ctx->tail, t);                                                           \
        write_digits(blk + t, n, k);                                                         \
        blk[t + k] ^= 0x06;                                                                  \
        blk[RATE - 1] ^= 0x80;                                                               \
        for (i = 0; i < 25; i++) {                                                           \
            lane[i] = zero + (ctx->mid[i] ^ (i < RATE_LANES ? load64_le(blk + 8 * i) : 0));  \
        }                                                                                    \
        while (n < end) {                                                                    \
            const uint64_t limit = best_limit(best, end);                                    \
            if (n >= limit) {                                                                \
                return -1;                                                                   \
            }                                                                                \
            cnt = 0;                                                                         \
            for (j = 0; j < W; j++) { /* slots past `limit` repeat a block, ignored */       \
                for (v = 0; v < nv; v++) {                                                   \
                    var[v][j] = ctx->mid[lo + v] ^ load64_le(blk + 8 * (lo + v));            \
                }                                                                            \
                nonce[j] = n;                                                                \
                if (n < limit) {                                                             \
                    cnt++;                                                                   \
                    n += step;                                                               \
                    add_digits(blk + t, k, step);                                            \
                }                                                                            \
            }                                                                                \
            for (v = 0; v < nv; v++) {                                                       \
                memcpy(&lane[lo + v], var[v], sizeof(VT));                                   \
            }                                                                                \
            KECCAK_LOAD(lane);                                                               \
            KECCAK_ROUNDS_1_TO_22;                                                           \
            KECCAK_LAST_ROUND_LANES_0_3(RC23);                                               \
            memcpy(out[0], &s0, sizeof(VT));                                                 \
            memcpy(out[1], &s1, sizeof(VT));                                                 \
            memcpy(out[2], &s2, sizeof(VT));                                                 \
            memcpy(out[3], &s3, sizeof(VT));                                                 \
            for (j = 0; j < cnt; j++) {                                                      \
                if (out[0][j] == ctx->target[0] && out[1][j] == ctx->target[1] &&            \
                    out[2][j] == ctx->target[2] && out[3][j] == ctx->target[3]) {            \
                    best_lower(best, (int64_t)nonce[j]);                                     \
                    return (int64_t)nonce[j];                                                \
                }                                                                            \
            }                                                                                \
        }                                                                                    \
        return -1;                                                                           \
    }

DEFINE_KERNEL(kernel_scalar, uint64_t, 1, )

#if HAVE_VECTOR_EXT
typedef uint64_t u64x2 __attribute__((vector_size(16)));
DEFINE_KERNEL(kernel_vec2, u64x2, 2, )
#endif

#if HAVE_X86_KERNELS
typedef uint64_t u64x4 __attribute__((vector_size(32)));
typedef uint64_t u64x8 __attribute__((vector_size(64)));
DEFINE_KERNEL(kernel_avx2, u64x4, 4, __attribute__((target("avx2"))))
DEFINE_KERNEL(kernel_avx512, u64x8, 8, __attribute__((target("avx512f,avx512vl"))))
#endif

static int cpu_always(void) { return 1; }

#if HAVE_X86_KERNELS
static int cpu_avx2(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2");
}

static int cpu_avx512(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl");
}
#endif

typedef struct {
    const char *name;
    kernel_fn fn;
    int (*supported)(void);
} kernel_info;

/* Fastest first; the first supported one is the default. */
static const kernel_info KERNELS[] = {
#if HAVE_X86_KERNELS
    {"avx512", kernel_avx512, cpu_avx512},
    {"avx2", kernel_avx2, cpu_avx2},
#endif
#if HAVE_VECTOR_EXT
    {"vec2", kernel_vec2, cpu_always},
#endif
    {"scalar", kernel_scalar, cpu_always},
};
#define N_KERNELS (sizeof KERNELS / sizeof KERNELS[0])

static const kernel_info *active_kernel = NULL;

static int64_t search(const search_ctx *ctx, uint64_t n, uint64_t end, uint64_t step, int64_t *best)
{
    const kernel_info *kernel = active_kernel;
    while (n < end) {
        unsigned k = count_digits(n);
        uint64_t group_end = POW10[k] < end ? POW10[k] : end;
        int64_t found;
        if (ctx->tail_len + k < RATE) {
            found = kernel->fn(ctx, n, group_end, step, k, best);
        } else {
            found = search_generic(ctx, n, group_end, step, best);
        }
        if (found >= 0) {
            return found;
        }
        n += (group_end - n + step - 1) / step * step; /* first nonce of the stride >= group_end */
    }
    return -1;
}

/* ---------------------------------------------------------------------------------------------
 * Python bindings.
 */
static PyObject *py_hash_hex(PyObject *self, PyObject *args)
{
    static const char HEX[] = "0123456789abcdef";
    const char *data;
    Py_ssize_t len;
    uint8_t digest[DIGEST_BYTES];
    char hex[2 * DIGEST_BYTES];
    int i;
    (void)self;
    if (!PyArg_ParseTuple(args, "y#:hash_hex", &data, &len)) {
        return NULL;
    }
    if (len >= (1 << 20)) {
        Py_BEGIN_ALLOW_THREADS
        hash_bytes((const uint8_t *)data, (size_t)len, digest);
        Py_END_ALLOW_THREADS
    } else {
        hash_bytes((const uint8_t *)data, (size_t)len, digest);
    }
    for (i = 0; i < DIGEST_BYTES; i++) {
        hex[2 * i] = HEX[digest[i] >> 4];
        hex[2 * i + 1] = HEX[digest[i] & 15];
    }
    return PyUnicode_FromStringAndSize(hex, 2 * DIGEST_BYTES);
}

static PyObject *py_solve(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"prefix", "target", "difficulty", "start", "step", "best", NULL};
    const char *prefix, *target;
    Py_ssize_t prefix_len, target_len;
    long long difficulty, start = 0, step = 1;
    PyObject *best_obj = Py_None;
    Py_buffer best_view;
    int64_t *best = NULL;
    search_ctx ctx;
    int64_t found;
    (void)self;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "y#y#L|LLO:solve", keywords, &prefix,
                                     &prefix_len, &target, &target_len, &difficulty, &start, &step,
                                     &best_obj)) {
        return NULL;
    }
    if (target_len != DIGEST_BYTES) {
        PyErr_SetString(PyExc_ValueError, "target must be exactly 32 bytes");
        return NULL;
    }
    if (difficulty < 0 || (uint64_t)difficulty > NONCE_LIMIT) {
        PyErr_SetString(PyExc_ValueError, "difficulty must be in [0, 2**53]");
        return NULL;
    }
    if (start < 0 || step < 1 || (uint64_t)step > NONCE_LIMIT) {
        PyErr_SetString(PyExc_ValueError, "start must be >= 0 and step in [1, 2**53]");
        return NULL;
    }
    if (best_obj != Py_None) {
        if (PyObject_GetBuffer(best_obj, &best_view, PyBUF_WRITABLE) < 0) {
            return NULL;
        }
        if (best_view.len < (Py_ssize_t)sizeof(int64_t) ||
            ((uintptr_t)best_view.buf % sizeof(int64_t)) != 0) {
            PyBuffer_Release(&best_view);
            PyErr_SetString(PyExc_ValueError, "best must be a writable, 8-byte aligned int64 buffer");
            return NULL;
        }
        best = (int64_t *)best_view.buf;
    }
    Py_BEGIN_ALLOW_THREADS
    ctx_init(&ctx, (const uint8_t *)prefix, (size_t)prefix_len, (const uint8_t *)target);
    found = search(&ctx, (uint64_t)start, (uint64_t)difficulty, (uint64_t)step, best);
    Py_END_ALLOW_THREADS
    if (best) {
        PyBuffer_Release(&best_view);
    }
    return PyLong_FromLongLong(found);
}

static PyObject *py_kernels(PyObject *self, PyObject *unused)
{
    PyObject *names = PyList_New(0);
    size_t i;
    (void)self;
    (void)unused;
    if (!names) {
        return NULL;
    }
    for (i = 0; i < N_KERNELS; i++) {
        if (KERNELS[i].supported()) {
            PyObject *name = PyUnicode_FromString(KERNELS[i].name);
            if (!name || PyList_Append(names, name) < 0) {
                Py_XDECREF(name);
                Py_DECREF(names);
                return NULL;
            }
            Py_DECREF(name);
        }
    }
    return names;
}

static PyObject *py_kernel(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    return PyUnicode_FromString(active_kernel->name);
}

static PyObject *py_set_kernel(PyObject *self, PyObject *args)
{
    const char *name;
    size_t i;
    (void)self;
    if (!PyArg_ParseTuple(args, "s:set_kernel", &name)) {
        return NULL;
    }
    for (i = 0; i < N_KERNELS; i++) {
        if (strcmp(KERNELS[i].name, name) == 0 && KERNELS[i].supported()) {
            active_kernel = &KERNELS[i];
            Py_RETURN_NONE;
        }
    }
    PyErr_Format(PyExc_ValueError, "kernel %s is not available on this CPU or build", name);
    return NULL;
}

static PyMethodDef pow_methods[] = {
    {"hash_hex", py_hash_hex, METH_VARARGS,
     "hash_hex(data: bytes) -> str\n--\n\nDeepSeekHashV1 digest of data as 64 lowercase hex characters."},
    {"solve", (PyCFunction)(void (*)(void))py_solve, METH_VARARGS | METH_KEYWORDS,
     "solve(prefix, target, difficulty, start=0, step=1, best=None) -> int\n--\n\n"
     "First n in start, start+step, ... below difficulty with hash(prefix + str(n)) == target,\n"
     "or -1. `best` (optional): a writable 8-byte aligned int64 buffer shared by concurrent\n"
     "searches; the search stops at nonces >= its value and lowers it to any answer found.\n"
     "Releases the GIL while searching."},
    {"kernels", py_kernels, METH_NOARGS, "kernels() -> list[str]\n--\n\nKernels this CPU can run, fastest first."},
    {"kernel", py_kernel, METH_NOARGS, "kernel() -> str\n--\n\nThe kernel used for searches."},
    {"set_kernel", py_set_kernel, METH_VARARGS,
     "set_kernel(name: str) -> None\n--\n\nUse another kernel (tests and benchmarks)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef pow_module = {
    PyModuleDef_HEAD_INIT,
    "_pow",
    "Native DeepSeekHashV1 hash and proof-of-work search (GIL released while searching).",
    -1,
    pow_methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC PyInit__pow(void)
{
    size_t i;
    if (!active_kernel) {
        for (i = 0; i < N_KERNELS; i++) {
            if (KERNELS[i].supported()) {
                active_kernel = &KERNELS[i];
                break;
            }
        }
    }
    return PyModule_Create(&pow_module);
}
