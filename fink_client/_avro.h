/*
 * Shared core of the C decoders in fink_client._fastdecode: the compiled schema tree
 * (Node, built once per schema from the program of fink_client/fastdecode.py) and
 * the strict primitive readers. The dict builder (_fastdecode.c) and the Arrow
 * builder (_arrow.c) both walk the same Node tree with these readers, so truncation,
 * trailing bytes and absurd lengths are refused the same way by both.
 */
#ifndef FINK_AVRO_H
#define FINK_AVRO_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum {
    K_NULL = 0, K_BOOLEAN = 1, K_INT = 2, K_LONG = 3, K_FLOAT = 4, K_DOUBLE = 5,
    K_BYTES = 6, K_STRING = 7, K_RECORD = 8, K_ARRAY = 9, K_MAP = 10, K_UNION = 11,
    K_ENUM = 12, K_FIXED = 13, K_LOGICAL = 14
};

typedef struct Node {
    int kind;
    Py_ssize_t n;            /* fields / branches / symbols, or the fixed size */
    PyObject **names;        /* record field names (interned, owned) */
    struct Node **children;  /* record fields, union branches, array/map/logical child */
    PyObject *symbols;       /* enum symbols (tuple, owned) */
    PyObject *fn;            /* logical type converter (owned) */
    PyObject *schema;        /* its schema argument (owned) */
    Py_ssize_t minsize;      /* fewest bytes a value of this node takes */
} Node;

typedef struct {
    const uint8_t *p;
    const uint8_t *end;
    const uint8_t *base;  /* start of the payload (Arrow views point into it) */
    int32_t index;        /* the payload's index in its batch */
} Cursor;

/* Defined in _fastdecode.c. */
Node *avro_node_build(PyObject *prog, int depth);
void avro_node_free(Node *node);

/* Defined in _arrow.c: the Arrow builder of a Reader (see there). */
typedef struct ArrowBuilder ArrowBuilder;
ArrowBuilder *arrow_builder_new(Node *root, int views);
void arrow_builder_free(ArrowBuilder *b);
PyObject *arrow_builder_schema(ArrowBuilder *b);
PyObject *arrow_builder_decode(ArrowBuilder *b, PyObject *payloads, PyObject *trailing_exc);

/* ---- strict primitive readers ----------------------------------------------------- */

static inline void avro_eof_error(const char *what) {
    PyErr_Format(PyExc_EOFError, "payload truncated while reading %s", what);
}

static inline int avro_read_long(Cursor *c, int64_t *out) {
    const uint8_t *p = c->p;
    uint64_t v = 0;
    int shift = 0;
    for (;;) {
        if (p >= c->end) { avro_eof_error("a varint"); return -1; }
        uint8_t b = *p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) break;
        shift += 7;
        if (shift > 63) {
            PyErr_SetString(PyExc_ValueError, "malformed varint: more than 10 bytes");
            return -1;
        }
    }
    c->p = p;
    *out = (int64_t)((v >> 1) ^ (~(v & 1) + 1));
    return 0;
}

/* A length prefix that must fit in what is left of the payload. */
static inline int avro_read_len(Cursor *c, Py_ssize_t *out, const char *what) {
    int64_t n;
    if (avro_read_long(c, &n) < 0) return -1;
    if (n < 0) {
        PyErr_Format(PyExc_ValueError, "negative length %lld for %s", (long long)n, what);
        return -1;
    }
    if ((uint64_t)n > (uint64_t)(c->end - c->p)) {
        PyErr_Format(PyExc_EOFError, "payload truncated: %s of %lld bytes, %zd left",
                     what, (long long)n, (Py_ssize_t)(c->end - c->p));
        return -1;
    }
    *out = (Py_ssize_t)n;
    return 0;
}

/* Block count of an array or map; a negative count is followed by the block size. */
static inline int avro_read_block_count(Cursor *c, int64_t *count, Py_ssize_t item_min) {
    if (avro_read_long(c, count) < 0) return -1;
    if (*count < 0) {
        int64_t nbytes;
        if (*count == INT64_MIN) {
            PyErr_SetString(PyExc_ValueError, "malformed block count");
            return -1;
        }
        *count = -*count;
        if (avro_read_long(c, &nbytes) < 0) return -1;
    }
    /* Refuse counts whose items cannot fit in what is left, instead of allocating
       for them; items that take no bytes (nulls) are capped instead. */
    int64_t left = (int64_t)(c->end - c->p);
    if ((item_min > 0 && *count > left / item_min) || *count > ((int64_t)1 << 28)) {
        avro_eof_error("an array/map block");
        return -1;
    }
    return 0;
}

/* Union branch or enum index in [0, n). */
static inline int avro_read_index(Cursor *c, Py_ssize_t n, int64_t *out, const char *what) {
    if (avro_read_long(c, out) < 0) return -1;
    if (*out < 0 || *out >= n) {
        PyErr_Format(PyExc_ValueError, "%s %lld out of range (%zd %s)",
                     what[0] == 'u' ? "union branch" : "enum index", (long long)*out, n,
                     what[0] == 'u' ? "branches" : "symbols");
        return -1;
    }
    return 0;
}

static inline uint32_t avro_le32(const uint8_t *p) {
    uint32_t u;
    memcpy(&u, p, 4);  /* Avro floats are little-endian */
#if PY_BIG_ENDIAN
    u = __builtin_bswap32(u);
#endif
    return u;
}

static inline uint64_t avro_le64(const uint8_t *p) {
    uint64_t u;
    memcpy(&u, p, 8);
#if PY_BIG_ENDIAN
    u = __builtin_bswap64(u);
#endif
    return u;
}

/* ---- UTF-8 validation (strings must be valid, as Python's strict decoder wants) ---- */
/* Shared by the Arrow builder and Reader.validate. */

static inline int avro_utf8_valid(const uint8_t *s, Py_ssize_t n) {
    Py_ssize_t i = 0;
    while (i < n) {
        if (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (!(w & 0x8080808080808080ULL)) { i += 8; continue; }
        }
        uint8_t b = s[i];
        if (b < 0x80) { i++; continue; }
        if (b < 0xC2) return 0;
        if (b < 0xE0) {
            if (i + 1 >= n || (s[i + 1] & 0xC0) != 0x80) return 0;
            i += 2;
            continue;
        }
        if (b < 0xF0) {
            if (i + 2 >= n) return 0;
            uint8_t b1 = s[i + 1], b2 = s[i + 2];
            if ((b1 & 0xC0) != 0x80 || (b2 & 0xC0) != 0x80) return 0;
            if (b == 0xE0 && b1 < 0xA0) return 0;   /* overlong */
            if (b == 0xED && b1 >= 0xA0) return 0;  /* surrogate */
            i += 3;
            continue;
        }
        if (b < 0xF5) {
            if (i + 3 >= n) return 0;
            uint8_t b1 = s[i + 1], b2 = s[i + 2], b3 = s[i + 3];
            if ((b1 & 0xC0) != 0x80 || (b2 & 0xC0) != 0x80 || (b3 & 0xC0) != 0x80) return 0;
            if (b == 0xF0 && b1 < 0x90) return 0;   /* overlong */
            if (b == 0xF4 && b1 >= 0x90) return 0;  /* above U+10FFFF */
            i += 4;
            continue;
        }
        return 0;
    }
    return 1;
}

/* Raise the UnicodeDecodeError Python's decoder gives for these bytes. */
static inline int avro_utf8_error(const uint8_t *s, Py_ssize_t n) {
    PyObject *u = PyUnicode_DecodeUTF8((const char *)s, n, NULL);
    if (u != NULL) {  /* cannot happen: the validator follows Python's rules */
        Py_DECREF(u);
        PyErr_SetString(PyExc_ValueError, "invalid UTF-8 string");
    }
    return -1;
}

#endif
