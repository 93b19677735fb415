/*
 * Avro -> Arrow without Python objects: the Arrow builder of a _fastdecode.Reader.
 *
 * From the Reader's compiled Node tree, arrow_builder_new derives a tree of columns
 * (Col), one per Arrow field, following the mapping of fink_client/io/arrow.py:
 * records are structs, arrays lists, maps map<string, value>, [null, T] a nullable T,
 * enums strings, fixed fixed_size_binary, timestamp/date/time logical types their
 * Arrow temporal type over the same integers, decimal decimal128. Decoding a batch
 * walks each payload with the strict readers of _avro.h and appends to the columns'
 * growable buffers; the result is exported through the Arrow C data interface
 * (https://arrow.apache.org/docs/format/CDataInterface.html), whose two structs are
 * declared below, so no Arrow header or library is needed at build time.
 *
 * Both the ArrowSchema and the ArrowArray come back to Python in a PyCapsule that
 * owns the struct (released by its destructor unless pyarrow moved it out), with
 * the struct's address for pyarrow's _import_from_c. Python checks once per schema
 * that the exported ArrowSchema equals io.arrow's (fink_client/fastdecode.py).
 *
 * With views (Reader(..., views=True)), Avro bytes are binary_view columns (format
 * "vz") whose 16-byte views point into the payloads themselves: each payload is one
 * variadic data buffer of every such column, and the exported arrays hold a reference
 * to the tuple of payloads (bytes objects; any other buffer is first copied into one)
 * until Arrow releases them, taking the GIL to drop it. The cutouts, ~95 % of a ZTF
 * alert's bytes, are then not copied at all (io/arrow.py: with_binary_views).
 *
 * Bounded memory: every value appended consumes payload bytes (the readers refuse
 * lengths and counts that do not fit in the payload), and 32-bit offsets that would
 * overflow raise OverflowError instead of wrapping.
 */
#include "_avro.h"

#include <stdio.h>
#include <stdlib.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

#ifndef ARROW_C_DATA_INTERFACE
#define ARROW_C_DATA_INTERFACE
#define ARROW_FLAG_DICTIONARY_ORDERED 1
#define ARROW_FLAG_NULLABLE 2
#define ARROW_FLAG_MAP_KEYS_SORTED 4

struct ArrowSchema {
    const char *format;
    const char *name;
    const char *metadata;
    int64_t flags;
    int64_t n_children;
    struct ArrowSchema **children;
    struct ArrowSchema *dictionary;
    void (*release)(struct ArrowSchema *);
    void *private_data;
};

struct ArrowArray {
    int64_t length;
    int64_t null_count;
    int64_t offset;
    int64_t n_buffers;
    int64_t n_children;
    const void **buffers;
    struct ArrowArray **children;
    struct ArrowArray *dictionary;
    void (*release)(struct ArrowArray *);
    void *private_data;
};
#endif

#if defined(__GNUC__) || defined(__clang__)
#define ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define ALWAYS_INLINE inline
#endif

/* Arrow layouts of the columns. */
enum {
    L_NULL, L_BOOL, L_I32, L_I64, L_F32, L_F64, L_BINARY, L_STRING, L_ENUM, L_FIXED,
    L_DECIMAL, L_STRUCT, L_LIST, L_MAP, L_BINVIEW
};

typedef struct {
    uint8_t *data;   /* malloc'ed: released by Arrow consumers without the GIL */
    size_t len, cap;
    size_t hint;     /* size reached by the previous batch: reserved up front */
} Buf;

typedef struct Col {
    int layout;
    int nullable;             /* the Arrow field is nullable: keep a validity bitmap */
    int is_union;             /* read a union index first */
    Py_ssize_t n_branches;
    char *branch_null;        /* per union branch: 1 if it is null */
    Py_ssize_t value_branch;  /* the non-null branch */
    Node *value;              /* Avro node the value is read with (unions, logical unwrapped) */
    Py_ssize_t width;         /* bytes per value: fixed-width layouts */
    int decimal_fixed;        /* decimal stored as fixed (else bytes) */
    int precision;
    const char **symbols;     /* enum symbols as UTF-8 (owned by the Node's tuple) */
    Py_ssize_t *symbol_len;
    char *format, *name;
    int64_t length, null_count;
    Buf validity, values, data;  /* values: fixed-width values, bits, or int32 offsets */
    Py_ssize_t n_children;
    struct Col **children;
} Col;

struct ArrowBuilder {
    Col *root;
    int views;  /* bytes columns as binary_view into the payloads (see L_BINVIEW) */
    int busy;  /* a batch is being built (guards against re-entry from a buffer export) */
};

/* ---- buffers ------------------------------------------------------------------------ */

/* A large buffer (cutout columns: ~40 MB per 1,000 alerts) is a fresh mmap for every
   batch, and first touching it in 4 KB pages cost more than copying the values into it
   (LSST batch build 97 -> 28 ms per 1,000 alerts with 2 MB pages). Ask for transparent
   huge pages there; advisory only, ignored where the kernel does not offer them. */
#define HUGE_PAGE ((size_t)2 << 20)
static void advise_huge(uint8_t *p, size_t cap) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (cap < 2 * HUGE_PAGE) return;
    uintptr_t start = ((uintptr_t)p + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1);
    uintptr_t end = ((uintptr_t)p + cap) & ~(uintptr_t)(HUGE_PAGE - 1);
    if (end > start) (void)madvise((void *)start, end - start, MADV_HUGEPAGE);
#else
    (void)p; (void)cap;
#endif
}

static int buf_grow(Buf *b, size_t extra) {
    size_t need = b->len + extra;
    if (need < b->len) { PyErr_NoMemory(); return -1; }
    size_t cap = b->cap ? b->cap : (b->hint > 64 ? b->hint : 64);
    while (cap < need) {
        if (cap > SIZE_MAX / 2) { PyErr_NoMemory(); return -1; }
        cap *= 2;
    }
    uint8_t *p = realloc(b->data, cap);
    if (p == NULL) { PyErr_NoMemory(); return -1; }
    b->data = p;
    b->cap = cap;
    advise_huge(p, cap);
    return 0;
}

static inline int buf_put(Buf *b, const void *src, size_t n) {
    if (b->len + n > b->cap && buf_grow(b, n) < 0) return -1;
    memcpy(b->data + b->len, src, n);
    b->len += n;
    return 0;
}

static inline int buf_zeros(Buf *b, size_t n) {
    if (b->len + n > b->cap && buf_grow(b, n) < 0) return -1;
    memset(b->data + b->len, 0, n);
    b->len += n;
    return 0;
}

static void buf_free(Buf *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* Remember how large the buffer grew, so the next batch allocates once. */
static void buf_note(Buf *b) {
    if (b->len > b->hint || b->len < b->hint / 4) b->hint = b->len + b->len / 8;
}

/* Bit `index` of a bitmap that grows one bit at a time (bits start at 0). */
static inline int bit_append(Buf *b, int64_t index, int set) {
    if ((index & 7) == 0) {
        uint8_t zero = 0;
        if (buf_put(b, &zero, 1) < 0) return -1;
    }
    if (set) b->data[index >> 3] |= (uint8_t)(1u << (index & 7));
    return 0;
}

static int col_overflow(const Col *col) {
    PyErr_Format(PyExc_OverflowError,
                 "column '%s' holds more than 2 GiB (or 2**31 items) in one batch: "
                 "decode fewer values at once", col->name);
    return -1;
}

/* Append the end offset `end` to an int32 offsets buffer. */
static inline int offset_append(Col *col, size_t end) {
    if (end > INT32_MAX) return col_overflow(col);
    int32_t o = (int32_t)end;
    return buf_put(&col->values, &o, 4);
}

/* ---- building the column tree --------------------------------------------------------- */

static void col_free(Col *col) {
    if (col == NULL) return;
    for (Py_ssize_t i = 0; i < col->n_children; i++) col_free(col->children[i]);
    free(col->children);
    free(col->branch_null);
    free(col->symbols);
    free(col->symbol_len);
    free(col->format);
    free(col->name);
    buf_free(&col->validity);
    buf_free(&col->values);
    buf_free(&col->data);
    free(col);
}

static Col *col_alloc(const char *name, const char *format, int layout) {
    Col *col = calloc(1, sizeof(Col));
    if (col == NULL) { PyErr_NoMemory(); return NULL; }
    col->layout = layout;
    col->name = strdup(name);
    col->format = strdup(format);
    if (col->name == NULL || col->format == NULL) { col_free(col); PyErr_NoMemory(); return NULL; }
    return col;
}

static int col_add_children(Col *col, Py_ssize_t n) {
    col->children = calloc(n ? (size_t)n : 1, sizeof(Col *));
    if (col->children == NULL) { PyErr_NoMemory(); return -1; }
    col->n_children = n;
    return 0;
}

static Col *col_build(Node *slot, const char *name, int depth, int views);

/* A string-valued key of a schema dict, or NULL (no error) if absent. */
static const char *schema_str(PyObject *schema, const char *key) {
    if (schema == NULL || !PyDict_Check(schema)) return NULL;
    PyObject *v = PyDict_GetItemString(schema, key);
    return (v != NULL && PyUnicode_Check(v)) ? PyUnicode_AsUTF8(v) : NULL;
}

static long schema_int(PyObject *schema, const char *key, long dflt) {
    if (schema == NULL || !PyDict_Check(schema)) return dflt;
    PyObject *v = PyDict_GetItemString(schema, key);
    if (v == NULL || !PyLong_Check(v)) return dflt;
    long out = PyLong_AsLong(v);
    if (out == -1 && PyErr_Occurred()) { PyErr_Clear(); return dflt; }
    return out;
}

/* Column for a plain (non-union) value node. */
static Col *col_build_value(Node *n, const char *name, int depth, int views) {
    char fmt[64];
    const char *logical = NULL;
    PyObject *lschema = NULL;
    if (n->kind == K_LOGICAL) {
        lschema = n->schema;
        logical = schema_str(lschema, "logicalType");
        if (logical == NULL && PyErr_Occurred()) return NULL;
        n = n->children[0];
    }
    Col *col = NULL;
    if (logical != NULL && strcmp(logical, "decimal") == 0 &&
        (n->kind == K_BYTES || n->kind == K_FIXED)) {
        long precision = schema_int(lschema, "precision", -1);
        long scale = schema_int(lschema, "scale", 0);
        if (precision < 1 || precision > 38) {
            PyErr_Format(PyExc_ValueError, "decimal precision %ld has no decimal128", precision);
            return NULL;
        }
        snprintf(fmt, sizeof fmt, "d:%ld,%ld", precision, scale);
        col = col_alloc(name, fmt, L_DECIMAL);
        if (col == NULL) return NULL;
        col->width = 16;
        col->precision = (int)precision;
        col->decimal_fixed = n->kind == K_FIXED;
        col->value = n;
        return col;
    }
    const char *f = NULL;
    int layout = -1;
    switch (n->kind) {
    case K_NULL: f = "n"; layout = L_NULL; break;
    case K_BOOLEAN: f = "b"; layout = L_BOOL; break;
    case K_INT:
        f = "i"; layout = L_I32;
        if (logical && strcmp(logical, "date") == 0) f = "tdD";
        else if (logical && strcmp(logical, "time-millis") == 0) f = "ttm";
        break;
    case K_LONG:
        f = "l"; layout = L_I64;
        if (logical && strcmp(logical, "timestamp-micros") == 0) f = "tsu:UTC";
        else if (logical && strcmp(logical, "timestamp-millis") == 0) f = "tsm:UTC";
        else if (logical && strcmp(logical, "time-micros") == 0) f = "ttu";
        break;
    case K_FLOAT: f = "f"; layout = L_F32; break;
    case K_DOUBLE: f = "g"; layout = L_F64; break;
    case K_BYTES:
        if (views) { f = "vz"; layout = L_BINVIEW; } else { f = "z"; layout = L_BINARY; }
        break;
    case K_STRING: f = "u"; layout = L_STRING; break;
    case K_ENUM: f = "u"; layout = L_ENUM; break;
    case K_FIXED:
        snprintf(fmt, sizeof fmt, "w:%zd", n->n);
        f = fmt; layout = L_FIXED;
        break;
    case K_RECORD: f = "+s"; layout = L_STRUCT; break;
    case K_ARRAY: f = "+l"; layout = L_LIST; break;
    case K_MAP: f = "+m"; layout = L_MAP; break;
    case K_UNION:
        PyErr_SetString(PyExc_ValueError, "a union directly inside a union");
        return NULL;
    default:
        PyErr_Format(PyExc_ValueError, "no Arrow column for schema node kind %d", n->kind);
        return NULL;
    }
    col = col_alloc(name, f, layout);
    if (col == NULL) return NULL;
    col->value = n;
    switch (layout) {
    case L_I32: case L_F32: col->width = 4; break;
    case L_I64: case L_F64: col->width = 8; break;
    case L_BINVIEW: col->width = 16; break;
    case L_FIXED:
        col->width = n->n;
        if (n->n < 1) {  /* Arrow has no zero-width fixed_size_binary */
            PyErr_SetString(PyExc_ValueError, "fixed of size 0");
            goto fail;
        }
        break;
    case L_ENUM: {
        col->symbols = calloc(n->n ? (size_t)n->n : 1, sizeof(char *));
        col->symbol_len = calloc(n->n ? (size_t)n->n : 1, sizeof(Py_ssize_t));
        if (col->symbols == NULL || col->symbol_len == NULL) { PyErr_NoMemory(); goto fail; }
        for (Py_ssize_t i = 0; i < n->n; i++) {
            col->symbols[i] = PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(n->symbols, i),
                                                      &col->symbol_len[i]);
            if (col->symbols[i] == NULL) goto fail;
        }
        break;
    }
    case L_STRUCT:
        if (col_add_children(col, n->n) < 0) goto fail;
        for (Py_ssize_t i = 0; i < n->n; i++) {
            const char *field = PyUnicode_AsUTF8(n->names[i]);
            if (field == NULL) goto fail;
            col->children[i] = col_build(n->children[i], field, depth + 1, views);
            if (col->children[i] == NULL) goto fail;
        }
        break;
    case L_LIST:
        if (col_add_children(col, 1) < 0) goto fail;
        col->children[0] = col_build(n->children[0], "element", depth + 1, views);
        if (col->children[0] == NULL) goto fail;
        break;
    case L_MAP: {
        if (col_add_children(col, 1) < 0) goto fail;
        Col *entries = col->children[0] = col_alloc("entries", "+s", L_STRUCT);
        if (entries == NULL || col_add_children(entries, 2) < 0) goto fail;
        entries->children[0] = col_alloc("key", "u", L_STRING);
        if (entries->children[0] == NULL) goto fail;
        entries->children[1] = col_build(n->children[0], "value", depth + 1, views);
        if (entries->children[1] == NULL) goto fail;
        break;
    }
    default:
        break;
    }
    return col;
fail:
    col_free(col);
    return NULL;
}

/* Column for a field/item/value slot: a union with null makes it nullable. */
static Col *col_build(Node *slot, const char *name, int depth, int views) {
    if (depth > 200) {
        PyErr_SetString(PyExc_ValueError, "schema nested too deeply");
        return NULL;
    }
    if (slot->kind != K_UNION) {
        Col *col = col_build_value(slot, name, depth, views);
        if (col != NULL && col->layout == L_NULL) col->nullable = 1;
        return col;
    }
    Py_ssize_t value_branch = -1, non_null = 0;
    for (Py_ssize_t i = 0; i < slot->n; i++) {
        if (slot->children[i]->kind != K_NULL) { value_branch = i; non_null++; }
    }
    if (non_null > 1) {
        PyErr_Format(PyExc_ValueError, "field '%s': a union of several non-null types has "
                     "no Arrow equivalent", name);
        return NULL;
    }
    Col *col = col_build_value(value_branch >= 0 ? slot->children[value_branch]
                               : slot->children[0], name, depth, views);
    if (col == NULL) return NULL;
    col->nullable = 1;
    col->is_union = 1;
    col->n_branches = slot->n;
    col->value_branch = value_branch;
    col->branch_null = calloc(slot->n ? (size_t)slot->n : 1, 1);
    if (col->branch_null == NULL) { col_free(col); PyErr_NoMemory(); return NULL; }
    for (Py_ssize_t i = 0; i < slot->n; i++) col->branch_null[i] = (i != value_branch);
    return col;
}

ArrowBuilder *arrow_builder_new(Node *root, int views) {
    if (root->kind != K_RECORD) {
        PyErr_SetString(PyExc_ValueError, "the top level of the schema must be a record");
        return NULL;
    }
    ArrowBuilder *b = calloc(1, sizeof(ArrowBuilder));
    if (b == NULL) { PyErr_NoMemory(); return NULL; }
    b->views = views;
    b->root = col_build(root, "", 0, views);
    if (b->root == NULL) { free(b); return NULL; }
    return b;
}

void arrow_builder_free(ArrowBuilder *b) {
    if (b == NULL) return;
    col_free(b->root);
    free(b);
}

/* ---- appending values ---------------------------------------------------------------- */

static int col_read(Col *col, Cursor *c);

static int has_offsets(int layout) {
    return layout == L_BINARY || layout == L_STRING || layout == L_ENUM || layout == L_LIST ||
           layout == L_MAP;
}

/* Start a batch: empty buffers, offsets holding their first 0. */
static int col_reset(Col *col) {
    buf_free(&col->validity);
    buf_free(&col->values);
    buf_free(&col->data);
    col->length = col->null_count = 0;
    if (has_offsets(col->layout) && offset_append(col, 0) < 0) return -1;
    for (Py_ssize_t i = 0; i < col->n_children; i++)
        if (col_reset(col->children[i]) < 0) return -1;
    return 0;
}

static void col_clear(Col *col) {
    buf_free(&col->validity);
    buf_free(&col->values);
    buf_free(&col->data);
    col->length = col->null_count = 0;
    for (Py_ssize_t i = 0; i < col->n_children; i++) col_clear(col->children[i]);
}

/* A null slot (or the placeholder under a null struct): no bytes read. */
static int col_append_null(Col *col) {
    switch (col->layout) {
    case L_NULL:
        break;
    case L_BOOL:
        if (bit_append(&col->values, col->length, 0) < 0) return -1;
        break;
    case L_I32: case L_I64: case L_F32: case L_F64: case L_FIXED: case L_DECIMAL:
    case L_BINVIEW:
        if (buf_zeros(&col->values, (size_t)col->width) < 0) return -1;
        break;
    case L_BINARY: case L_STRING: case L_ENUM: case L_LIST: case L_MAP: {
        int32_t o;
        memcpy(&o, col->values.data + col->values.len - 4, 4);
        if (buf_put(&col->values, &o, 4) < 0) return -1;
        break;
    }
    case L_STRUCT:
        for (Py_ssize_t i = 0; i < col->n_children; i++)
            if (col_append_null(col->children[i]) < 0) return -1;
        break;
    }
    if (col->nullable) {
        if (col->layout != L_NULL && bit_append(&col->validity, col->length, 0) < 0) return -1;
        col->null_count++;
    }
    col->length++;
    return 0;
}

static int read_string_into(Col *col, Cursor *c, const char *what) {
    Py_ssize_t n;
    if (avro_read_len(c, &n, what) < 0) return -1;
    if (!avro_utf8_valid(c->p, n)) return avro_utf8_error(c->p, n);
    if (buf_put(&col->data, c->p, (size_t)n) < 0) return -1;
    c->p += n;
    return offset_append(col, col->data.len);
}

/* Big-endian two's complement (Avro decimal) -> 128-bit little-endian (Arrow). */
static int read_decimal(Col *col, Cursor *c) {
    Py_ssize_t n;
    if (col->decimal_fixed) {
        n = col->value->n;
        if (c->end - c->p < n) { avro_eof_error("a fixed"); return -1; }
    } else if (avro_read_len(c, &n, "bytes") < 0) {
        return -1;
    }
    const uint8_t *p = c->p;
    c->p += n;
    uint8_t sign = (n > 0 && (p[0] & 0x80)) ? 0xFF : 0x00;
    for (Py_ssize_t i = 0; i + 16 < n; i++) {  /* leading bytes beyond 16: sign extension */
        if (p[i] != sign || ((p[n - 16] ^ sign) & 0x80)) goto too_big;
    }
    unsigned __int128 u = 0;
    for (Py_ssize_t i = 0; i < 16; i++) {
        uint8_t byte = i < n ? p[n - 1 - i] : sign;
        u |= (unsigned __int128)byte << (8 * i);
    }
    __int128 v = (__int128)u;
    unsigned __int128 mag = v < 0 ? (unsigned __int128)0 - u : u;
    unsigned __int128 limit = 1;
    for (int i = 0; i < col->precision; i++) limit *= 10;
    if (mag >= limit) goto too_big;
    uint8_t out[16];
    for (int i = 0; i < 16; i++) out[i] = (uint8_t)(u >> (8 * i));
    return buf_put(&col->values, out, 16);
too_big:
    PyErr_Format(PyExc_ValueError, "decimal value of field '%s' exceeds its precision %d",
                 col->name, col->precision);
    return -1;
}

static int col_read_container(Col *col, Cursor *c);

/* The (non-null) value of a column: leaves inline, containers through a call. */
static ALWAYS_INLINE int col_read_value(Col *col, Cursor *c) {
    switch (col->layout) {
    case L_NULL:
        col->null_count++;
        return 0;
    case L_BOOL:
        if (c->p >= c->end) { avro_eof_error("a boolean"); return -1; }
        return bit_append(&col->values, col->length, *c->p++ != 0);
    case L_I32: {
        int64_t v;
        if (avro_read_long(c, &v) < 0) return -1;
        if (v < INT32_MIN || v > INT32_MAX) {
            PyErr_Format(PyExc_ValueError, "int %lld of field '%s' out of the 32-bit range",
                         (long long)v, col->name);
            return -1;
        }
        int32_t i = (int32_t)v;
        return buf_put(&col->values, &i, 4);
    }
    case L_I64: {
        int64_t v;
        if (avro_read_long(c, &v) < 0) return -1;
        return buf_put(&col->values, &v, 8);
    }
    case L_F32: {
        if (c->end - c->p < 4) { avro_eof_error("a float"); return -1; }
        uint32_t u = avro_le32(c->p);
        c->p += 4;
        return buf_put(&col->values, &u, 4);
    }
    case L_F64: {
        if (c->end - c->p < 8) { avro_eof_error("a double"); return -1; }
        uint64_t u = avro_le64(c->p);
        c->p += 8;
        return buf_put(&col->values, &u, 8);
    }
    case L_BINARY: {
        Py_ssize_t n;
        if (avro_read_len(c, &n, "bytes") < 0) return -1;
        if (buf_put(&col->data, c->p, (size_t)n) < 0) return -1;
        c->p += n;
        return offset_append(col, col->data.len);
    }
    case L_BINVIEW: {
        /* A 16-byte view: the length, then the value itself if at most 12 bytes, else
           its first 4 bytes, the payload's index (its buffer) and the offset in it. */
        Py_ssize_t n;
        if (avro_read_len(c, &n, "bytes") < 0) return -1;
        uint8_t v[16] = {0};
        int32_t len32 = (int32_t)n, off32 = (int32_t)(c->p - c->base);
        memcpy(v, &len32, 4);
        if (n <= 12) {
            memcpy(v + 4, c->p, (size_t)n);
        } else {
            memcpy(v + 4, c->p, 4);
            memcpy(v + 8, &c->index, 4);
            memcpy(v + 12, &off32, 4);
        }
        c->p += n;
        return buf_put(&col->values, v, 16);
    }
    case L_STRING:
        return read_string_into(col, c, "a string");
    case L_ENUM: {
        int64_t index;
        if (avro_read_index(c, col->value->n, &index, "enum") < 0) return -1;
        if (buf_put(&col->data, col->symbols[index], (size_t)col->symbol_len[index]) < 0)
            return -1;
        return offset_append(col, col->data.len);
    }
    case L_FIXED:
        if (c->end - c->p < col->width) { avro_eof_error("a fixed"); return -1; }
        if (buf_put(&col->values, c->p, (size_t)col->width) < 0) return -1;
        c->p += col->width;
        return 0;
    case L_DECIMAL:
        return read_decimal(col, c);
    default:
        return col_read_container(col, c);
    }
}

/* One value of a column (a union index first, if any), appended with its validity.
   Inlined into the loops over struct fields and list items. */
static ALWAYS_INLINE int col_read_inline(Col *col, Cursor *c) {
    if (col->is_union) {
        int64_t index;
        if (avro_read_index(c, col->n_branches, &index, "union") < 0) return -1;
        if (col->branch_null[index]) return col_append_null(col);
    }
    if (col_read_value(col, c) < 0) return -1;
    if (col->nullable && col->layout != L_NULL &&
        bit_append(&col->validity, col->length, 1) < 0) return -1;
    col->length++;
    return 0;
}

static int col_read(Col *col, Cursor *c) {
    return col_read_inline(col, c);
}

/* Struct, list and map values (recursive). */
static int col_read_container(Col *col, Cursor *c) {
    switch (col->layout) {
    case L_STRUCT:
        for (Py_ssize_t i = 0; i < col->n_children; i++)
            if (col_read_inline(col->children[i], c) < 0) return -1;
        return 0;
    case L_LIST: {
        Col *item = col->children[0];
        Py_ssize_t item_min = col->value->children[0]->minsize;
        for (;;) {
            int64_t count;
            if (avro_read_block_count(c, &count, item_min) < 0) return -1;
            if (count == 0) break;
            for (int64_t i = 0; i < count; i++)
                if (col_read_inline(item, c) < 0) return -1;
        }
        return offset_append(col, (size_t)item->length);
    }
    case L_MAP: {
        Col *entries = col->children[0];
        Col *key = entries->children[0], *value = entries->children[1];
        Py_ssize_t item_min = col->value->children[0]->minsize + 1;
        for (;;) {
            int64_t count;
            if (avro_read_block_count(c, &count, item_min) < 0) return -1;
            if (count == 0) break;
            for (int64_t i = 0; i < count; i++) {
                if (read_string_into(key, c, "a map key") < 0) return -1;
                key->length++;
                if (col_read_inline(value, c) < 0) return -1;
                entries->length++;
            }
        }
        return offset_append(col, (size_t)entries->length);
    }
    default:
        PyErr_SetString(PyExc_SystemError, "corrupt Arrow column tree");
        return -1;
    }
}

/* ---- export: the C data interface ----------------------------------------------------- */

typedef struct {
    void *buffers[3];
    const void *pointers[3];
    struct ArrowArray *kids;
    struct ArrowArray **kid_pointers;
    int64_t n_kids;
    /* binary_view columns: validity, views, one data buffer per payload, their sizes */
    const void **view_pointers;
    int64_t *view_sizes;
    PyObject *owners;  /* tuple of the payloads (bytes) the views point into */
} ArrayPrivate;

static void array_release(struct ArrowArray *a) {
    if (a == NULL || a->release == NULL) return;
    ArrayPrivate *p = a->private_data;
    for (int i = 0; i < 3; i++) free(p->buffers[i]);
    free(p->view_pointers);
    free(p->view_sizes);
    if (p->owners != NULL && Py_IsInitialized()) {
        /* Arrow may release a batch from any thread, without the GIL */
        PyGILState_STATE gil = PyGILState_Ensure();
        Py_DECREF(p->owners);
        PyGILState_Release(gil);
    }
    for (int64_t i = 0; i < p->n_kids; i++) {
        struct ArrowArray *kid = p->kid_pointers[i];
        if (kid->release != NULL) kid->release(kid);
    }
    free(p->kids);
    free(p->kid_pointers);
    free(p);
    a->release = NULL;
}

/* Hand a buffer over (never NULL: a zero-length buffer still gets a valid pointer). */
static void *buf_take(Buf *b) {
    buf_note(b);
    void *data = b->data;
    if (data == NULL) data = calloc(1, 8);
    b->data = NULL;
    b->len = b->cap = 0;
    return data;
}

/* The buffers of a binary_view column: its views point into the payloads (`owners`,
   one variadic data buffer each, kept alive by a reference until Arrow releases it). */
static int view_export(Col *col, ArrayPrivate *p, struct ArrowArray *out, PyObject *owners) {
    Py_ssize_t nd = owners != NULL ? PyTuple_GET_SIZE(owners) : 0;
    p->view_pointers = calloc((size_t)nd + 3, sizeof(void *));
    p->view_sizes = calloc(nd ? (size_t)nd : 1, sizeof(int64_t));
    if (p->view_pointers == NULL || p->view_sizes == NULL) return -1;
    if (col->nullable && col->null_count > 0) {
        p->buffers[0] = buf_take(&col->validity);
        if (p->buffers[0] == NULL) return -1;
    } else {
        buf_free(&col->validity);
    }
    p->buffers[1] = buf_take(&col->values);
    if (p->buffers[1] == NULL) return -1;
    p->view_pointers[0] = p->buffers[0];
    p->view_pointers[1] = p->buffers[1];
    for (Py_ssize_t i = 0; i < nd; i++) {
        PyObject *item = PyTuple_GET_ITEM(owners, i);
        p->view_pointers[2 + i] = PyBytes_AS_STRING(item);
        p->view_sizes[i] = (int64_t)PyBytes_GET_SIZE(item);
    }
    p->view_pointers[2 + nd] = p->view_sizes;
    if (owners != NULL) { Py_INCREF(owners); p->owners = owners; }
    out->buffers = p->view_pointers;
    out->n_buffers = 3 + nd;
    return 0;
}

/* Move the column's buffers into `out`; the column is left empty. */
static int col_export(Col *col, struct ArrowArray *out, PyObject *owners) {
    memset(out, 0, sizeof *out);
    ArrayPrivate *p = calloc(1, sizeof(ArrayPrivate));
    if (p == NULL) { PyErr_NoMemory(); return -1; }
    out->private_data = p;
    out->release = array_release;
    out->length = col->length;
    out->null_count = col->null_count;
    out->buffers = p->pointers;
    int nbuf;
    switch (col->layout) {
    case L_NULL: nbuf = 0; break;
    case L_STRUCT: nbuf = 1; break;
    case L_BINARY: case L_STRING: case L_ENUM: nbuf = 3; break;
    case L_BINVIEW: nbuf = -1; break;
    default: nbuf = 2; break;
    }
    out->n_buffers = nbuf;
    if (nbuf < 0) {
        if (view_export(col, p, out, owners) < 0) goto nomem;
    } else if (nbuf > 0) {
        if (col->nullable && col->null_count > 0) {
            p->buffers[0] = buf_take(&col->validity);
            if (p->buffers[0] == NULL) goto nomem;
        } else {
            buf_free(&col->validity);
        }
        for (int i = 1; i < nbuf; i++) {
            p->buffers[i] = buf_take(i == 1 ? &col->values : &col->data);
            if (p->buffers[i] == NULL) goto nomem;
        }
        for (int i = 0; i < nbuf; i++) p->pointers[i] = p->buffers[i];
    }
    if (col->n_children > 0) {
        p->kids = calloc((size_t)col->n_children, sizeof(struct ArrowArray));
        p->kid_pointers = calloc((size_t)col->n_children, sizeof(struct ArrowArray *));
        if (p->kids == NULL || p->kid_pointers == NULL) goto nomem;
        for (Py_ssize_t i = 0; i < col->n_children; i++) {
            p->kid_pointers[i] = &p->kids[i];
            if (col_export(col->children[i], &p->kids[i], owners) < 0) {
                p->n_kids = i;  /* release only the children already exported */
                array_release(out);
                return -1;
            }
        }
        p->n_kids = col->n_children;
        out->n_children = col->n_children;
        out->children = p->kid_pointers;
    }
    col->length = col->null_count = 0;
    return 0;
nomem:
    PyErr_NoMemory();
    array_release(out);
    return -1;
}

typedef struct {
    struct ArrowSchema *kids;
    struct ArrowSchema **kid_pointers;
    int64_t n_kids;
    char *format, *name;
} SchemaPrivate;

static void schema_release(struct ArrowSchema *s) {
    if (s == NULL || s->release == NULL) return;
    SchemaPrivate *p = s->private_data;
    for (int64_t i = 0; i < p->n_kids; i++) {
        struct ArrowSchema *kid = p->kid_pointers[i];
        if (kid->release != NULL) kid->release(kid);
    }
    free(p->kids);
    free(p->kid_pointers);
    free(p->format);
    free(p->name);
    free(p);
    s->release = NULL;
}

static int col_export_schema(const Col *col, struct ArrowSchema *out) {
    memset(out, 0, sizeof *out);
    SchemaPrivate *p = calloc(1, sizeof(SchemaPrivate));
    if (p == NULL) { PyErr_NoMemory(); return -1; }
    out->private_data = p;
    out->release = schema_release;
    p->format = strdup(col->format);
    p->name = strdup(col->name);
    if (p->format == NULL || p->name == NULL) goto nomem;
    out->format = p->format;
    out->name = p->name;
    out->flags = col->nullable ? ARROW_FLAG_NULLABLE : 0;
    if (col->n_children > 0) {
        p->kids = calloc((size_t)col->n_children, sizeof(struct ArrowSchema));
        p->kid_pointers = calloc((size_t)col->n_children, sizeof(struct ArrowSchema *));
        if (p->kids == NULL || p->kid_pointers == NULL) goto nomem;
        for (Py_ssize_t i = 0; i < col->n_children; i++) {
            p->kid_pointers[i] = &p->kids[i];
            if (col_export_schema(col->children[i], &p->kids[i]) < 0) {
                p->n_kids = i;
                schema_release(out);
                return -1;
            }
        }
        p->n_kids = col->n_children;
        out->n_children = col->n_children;
        out->children = p->kid_pointers;
    }
    return 0;
nomem:
    PyErr_NoMemory();
    schema_release(out);
    return -1;
}

/* ---- capsules ------------------------------------------------------------------------- */

static void array_capsule_free(PyObject *capsule) {
    struct ArrowArray *a = PyCapsule_GetPointer(capsule, "arrow_array");
    if (a == NULL) { PyErr_Clear(); return; }
    if (a->release != NULL) a->release(a);  /* not imported: still ours */
    free(a);
}

static void schema_capsule_free(PyObject *capsule) {
    struct ArrowSchema *s = PyCapsule_GetPointer(capsule, "arrow_schema");
    if (s == NULL) { PyErr_Clear(); return; }
    if (s->release != NULL) s->release(s);
    free(s);
}

PyObject *arrow_builder_schema(ArrowBuilder *b) {
    struct ArrowSchema *s = malloc(sizeof *s);
    if (s == NULL) return PyErr_NoMemory();
    if (col_export_schema(b->root, s) < 0) { free(s); return NULL; }
    PyObject *capsule = PyCapsule_New(s, "arrow_schema", schema_capsule_free);
    if (capsule == NULL) { schema_release(s); free(s); return NULL; }
    return Py_BuildValue("(NN)", capsule, PyLong_FromVoidPtr(s));
}

/* Tag the pending exception with the index of the payload that raised it. */
static void tag_index(Py_ssize_t index) {
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (value != NULL) {
        PyObject *i = PyLong_FromSsize_t(index);
        if (i == NULL || PyObject_SetAttrString(value, "batch_index", i) < 0) PyErr_Clear();
        Py_XDECREF(i);
    }
    PyErr_Restore(type, value, tb);
}

PyObject *arrow_builder_decode(ArrowBuilder *b, PyObject *payloads, PyObject *trailing_exc) {
    if (b->busy) {
        PyErr_SetString(PyExc_RuntimeError, "this decoder is already building a batch");
        return NULL;
    }
    PyObject *seq = PySequence_Fast(payloads, "decode_arrow expects a sequence of payloads");
    if (seq == NULL) return NULL;
    Col *root = b->root;
    b->busy = 1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject *owners = NULL;  /* views: the payloads as bytes, which the batch keeps */
    if (b->views && n > INT32_MAX) {
        PyErr_SetString(PyExc_OverflowError, "too many payloads for one batch of views");
        goto fail;
    }
    if (b->views && (owners = PyTuple_New(n)) == NULL) goto fail;
    if (col_reset(root) < 0) goto fail;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(seq, i);
        if (owners != NULL) {  /* bytes are immutable: other buffers are copied once */
            PyObject *own;
            if (PyBytes_CheckExact(item)) {
                Py_INCREF(item);
                own = item;
            } else {
                own = PyBytes_FromObject(item);
                if (own == NULL) { tag_index(i); goto fail; }
            }
            PyTuple_SET_ITEM(owners, i, own);
            if (PyBytes_GET_SIZE(own) > INT32_MAX) {
                PyErr_SetString(PyExc_OverflowError, "a payload of 2 GiB or more");
                tag_index(i);
                goto fail;
            }
            item = own;
        }
        Py_buffer view;
        if (PyObject_GetBuffer(item, &view, PyBUF_SIMPLE) < 0) {
            tag_index(i);
            goto fail;
        }
        Cursor c = {(const uint8_t *)view.buf, (const uint8_t *)view.buf + view.len,
                    (const uint8_t *)view.buf, (int32_t)i};
        int rc = col_read(root, &c);
        if (rc == 0 && c.p != c.end) {
            PyErr_Format(trailing_exc, "%zd bytes left after the record (%zd bytes in all): "
                         "wrong schema for this payload?", (Py_ssize_t)(c.end - c.p),
                         (Py_ssize_t)view.len);
            rc = -1;
        }
        PyBuffer_Release(&view);
        if (rc < 0) { tag_index(i); goto fail; }
    }
    Py_DECREF(seq);
    b->busy = 0;
    struct ArrowArray *a = malloc(sizeof *a);
    if (a == NULL) { Py_XDECREF(owners); col_clear(root); return PyErr_NoMemory(); }
    int exported = col_export(root, a, owners);
    Py_XDECREF(owners);  /* each view column holds its own reference */
    if (exported < 0) { free(a); col_clear(root); return NULL; }
    PyObject *capsule = PyCapsule_New(a, "arrow_array", array_capsule_free);
    if (capsule == NULL) { array_release(a); free(a); return NULL; }
    return Py_BuildValue("(NN)", capsule, PyLong_FromVoidPtr(a));
fail:
    Py_XDECREF(owners);
    col_clear(root);
    Py_DECREF(seq);
    b->busy = 0;
    return NULL;
}
