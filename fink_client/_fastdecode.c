/*
 * Schema-compiled decoder for schemaless Avro records (the fast path of
 * fink_client.codec). Python compiles a parsed schema into a "program" of nested
 * tuples (see fink_client/fastdecode.py); Reader(program, trailing_exc) turns it
 * into a tree of C nodes once, and calling the Reader on a bytes-like payload walks
 * that tree and builds the same Python objects fastavro would.
 *
 * Strict: a length or value that runs past the end raises EOFError; bytes left
 * after the record raise `trailing_exc`. Byte strings are copied exactly once,
 * from the payload into the resulting bytes object; record keys are interned
 * strings shared by every decoded record.
 *
 * Reader.validate walks the same tree with the same checks but builds nothing (for
 * writers that copy raw bytes). The same Reader also builds Arrow columns straight
 * from the payloads (decode_arrow, in _arrow.c) with the same Node tree and primitive
 * readers (_avro.h).
 */
#include "_avro.h"

void avro_node_free(Node *node) {
    if (node == NULL) return;
    if (node->names != NULL) {
        for (Py_ssize_t i = 0; i < node->n; i++) Py_XDECREF(node->names[i]);
        PyMem_Free(node->names);
    }
    if (node->children != NULL) {
        Py_ssize_t count = (node->kind == K_RECORD || node->kind == K_UNION) ? node->n : 1;
        for (Py_ssize_t i = 0; i < count; i++) avro_node_free(node->children[i]);
        PyMem_Free(node->children);
    }
    Py_XDECREF(node->symbols);
    Py_XDECREF(node->fn);
    Py_XDECREF(node->schema);
    PyMem_Free(node);
}


static int build_children(Node *node, PyObject *seq, Py_ssize_t count, int depth) {
    node->children = PyMem_Calloc(count ? count : 1, sizeof(Node *));
    if (node->children == NULL) { PyErr_NoMemory(); return -1; }
    for (Py_ssize_t i = 0; i < count; i++) {
        node->children[i] = avro_node_build(PyTuple_GET_ITEM(seq, i), depth + 1);
        if (node->children[i] == NULL) return -1;
    }
    return 0;
}

static Py_ssize_t min_size(const Node *node) {
    switch (node->kind) {
    case K_NULL: return 0;
    case K_FLOAT: return 4;
    case K_DOUBLE: return 8;
    case K_FIXED: return node->n;
    case K_LOGICAL: return node->children[0]->minsize;
    case K_RECORD: {
        Py_ssize_t total = 0;
        for (Py_ssize_t i = 0; i < node->n; i++) total += node->children[i]->minsize;
        return total;
    }
    default: return 1;  /* a varint, a length, a union index or a block count */
    }
}

static Node *node_build_kind(PyObject *prog, int depth);

Node *avro_node_build(PyObject *prog, int depth) {
    Node *node = node_build_kind(prog, depth);
    if (node != NULL) node->minsize = min_size(node);
    return node;
}

static Node *node_build_kind(PyObject *prog, int depth) {
    if (depth > 200) {
        PyErr_SetString(PyExc_ValueError, "schema program nested too deeply");
        return NULL;
    }
    if (!PyTuple_Check(prog) || PyTuple_GET_SIZE(prog) < 1) {
        PyErr_SetString(PyExc_TypeError, "schema program nodes must be non-empty tuples");
        return NULL;
    }
    long kind = PyLong_AsLong(PyTuple_GET_ITEM(prog, 0));
    if (kind == -1 && PyErr_Occurred()) return NULL;
    Node *node = PyMem_Calloc(1, sizeof(Node));
    if (node == NULL) { PyErr_NoMemory(); return NULL; }
    node->kind = (int)kind;
    Py_ssize_t size = PyTuple_GET_SIZE(prog);
    switch (kind) {
    case K_NULL: case K_BOOLEAN: case K_INT: case K_LONG: case K_FLOAT: case K_DOUBLE:
    case K_BYTES: case K_STRING:
        return node;
    case K_RECORD: {
        PyObject *names, *fields;
        if (size != 3 || !PyTuple_Check(names = PyTuple_GET_ITEM(prog, 1)) ||
            !PyTuple_Check(fields = PyTuple_GET_ITEM(prog, 2)) ||
            PyTuple_GET_SIZE(names) != PyTuple_GET_SIZE(fields)) goto bad;
        node->n = PyTuple_GET_SIZE(names);
        node->names = PyMem_Calloc(node->n ? node->n : 1, sizeof(PyObject *));
        if (node->names == NULL) { PyErr_NoMemory(); goto fail; }
        for (Py_ssize_t i = 0; i < node->n; i++) {
            PyObject *name = PyTuple_GET_ITEM(names, i);
            if (!PyUnicode_CheckExact(name)) goto bad;
            Py_INCREF(name);
            PyUnicode_InternInPlace(&name);
            node->names[i] = name;
        }
        if (build_children(node, fields, node->n, depth) < 0) goto fail;
        return node;
    }
    case K_ARRAY: case K_MAP: {
        if (size != 2) goto bad;
        PyObject *one = PyTuple_Pack(1, PyTuple_GET_ITEM(prog, 1));
        if (one == NULL) goto fail;
        int rc = build_children(node, one, 1, depth);
        Py_DECREF(one);
        if (rc < 0) goto fail;
        return node;
    }
    case K_UNION: {
        PyObject *branches;
        if (size != 2 || !PyTuple_Check(branches = PyTuple_GET_ITEM(prog, 1))) goto bad;
        node->n = PyTuple_GET_SIZE(branches);
        if (build_children(node, branches, node->n, depth) < 0) goto fail;
        return node;
    }
    case K_ENUM: {
        if (size != 2 || !PyTuple_Check(PyTuple_GET_ITEM(prog, 1))) goto bad;
        node->symbols = PyTuple_GET_ITEM(prog, 1);
        Py_INCREF(node->symbols);
        node->n = PyTuple_GET_SIZE(node->symbols);
        return node;
    }
    case K_FIXED: {
        if (size != 2) goto bad;
        node->n = PyLong_AsSsize_t(PyTuple_GET_ITEM(prog, 1));
        if (node->n < 0) { if (!PyErr_Occurred()) goto bad; goto fail; }
        return node;
    }
    case K_LOGICAL: {
        if (size != 4) goto bad;
        PyObject *one = PyTuple_Pack(1, PyTuple_GET_ITEM(prog, 1));
        if (one == NULL) goto fail;
        int rc = build_children(node, one, 1, depth);
        Py_DECREF(one);
        if (rc < 0) goto fail;
        node->fn = PyTuple_GET_ITEM(prog, 2);
        node->schema = PyTuple_GET_ITEM(prog, 3);
        Py_INCREF(node->fn);
        Py_INCREF(node->schema);
        return node;
    }
    default:
        break;
    }
bad:
    PyErr_Format(PyExc_ValueError, "malformed schema program node of kind %ld", kind);
fail:
    avro_node_free(node);
    return NULL;
}

/* ---- the walker -------------------------------------------------------------------- */

static PyObject *decode_node(Node *node, Cursor *c);

static PyObject *decode_record(Node *node, Cursor *c) {
    PyObject *dict = _PyDict_NewPresized(node->n);
    if (dict == NULL) return NULL;
    for (Py_ssize_t i = 0; i < node->n; i++) {
        PyObject *value = decode_node(node->children[i], c);
        if (value == NULL) { Py_DECREF(dict); return NULL; }
        int rc = PyDict_SetItem(dict, node->names[i], value);
        Py_DECREF(value);
        if (rc < 0) { Py_DECREF(dict); return NULL; }
    }
    return dict;
}

static PyObject *decode_array(Node *node, Cursor *c) {
    Node *item = node->children[0];
    PyObject *list = NULL;
    for (;;) {
        int64_t count;
        if (avro_read_block_count(c, &count, item->minsize) < 0) goto fail;
        if (count == 0) break;
        if (list == NULL) {
            list = PyList_New((Py_ssize_t)count);
            if (list == NULL) return NULL;
            for (Py_ssize_t i = 0; i < (Py_ssize_t)count; i++) {
                PyObject *value = decode_node(item, c);
                if (value == NULL) goto fail;
                PyList_SET_ITEM(list, i, value);
            }
        } else {
            for (int64_t i = 0; i < count; i++) {
                PyObject *value = decode_node(item, c);
                if (value == NULL) goto fail;
                int rc = PyList_Append(list, value);
                Py_DECREF(value);
                if (rc < 0) goto fail;
            }
        }
    }
    return list != NULL ? list : PyList_New(0);
fail:
    /* PyList_New fills with NULL, which list_dealloc tolerates. */
    Py_XDECREF(list);
    return NULL;
}

static PyObject *decode_map(Node *node, Cursor *c) {
    Node *item = node->children[0];
    PyObject *dict = PyDict_New();
    if (dict == NULL) return NULL;
    for (;;) {
        int64_t count;
        if (avro_read_block_count(c, &count, item->minsize + 1) < 0) goto fail;
        if (count == 0) break;
        for (int64_t i = 0; i < count; i++) {
            Py_ssize_t n;
            if (avro_read_len(c, &n, "a map key") < 0) goto fail;
            PyObject *key = PyUnicode_DecodeUTF8((const char *)c->p, n, NULL);
            if (key == NULL) goto fail;
            c->p += n;
            PyObject *value = decode_node(item, c);
            if (value == NULL) { Py_DECREF(key); goto fail; }
            int rc = PyDict_SetItem(dict, key, value);
            Py_DECREF(key);
            Py_DECREF(value);
            if (rc < 0) goto fail;
        }
    }
    return dict;
fail:
    Py_DECREF(dict);
    return NULL;
}

static PyObject *decode_node(Node *node, Cursor *c) {
    switch (node->kind) {
    case K_NULL:
        Py_RETURN_NONE;
    case K_BOOLEAN: {
        if (c->p >= c->end) { avro_eof_error("a boolean"); return NULL; }
        return PyBool_FromLong(*c->p++ != 0);
    }
    case K_INT: case K_LONG: {
        int64_t v;
        if (avro_read_long(c, &v) < 0) return NULL;
        return PyLong_FromLongLong(v);
    }
    case K_FLOAT: {
        if (c->end - c->p < 4) { avro_eof_error("a float"); return NULL; }
        uint32_t u = avro_le32(c->p);
        float f;
        memcpy(&f, &u, 4);
        c->p += 4;
        return PyFloat_FromDouble((double)f);
    }
    case K_DOUBLE: {
        if (c->end - c->p < 8) { avro_eof_error("a double"); return NULL; }
        uint64_t u = avro_le64(c->p);
        double d;
        memcpy(&d, &u, 8);
        c->p += 8;
        return PyFloat_FromDouble(d);
    }
    case K_BYTES: {
        Py_ssize_t n;
        if (avro_read_len(c, &n, "bytes") < 0) return NULL;
        PyObject *b = PyBytes_FromStringAndSize((const char *)c->p, n);
        c->p += n;
        return b;
    }
    case K_STRING: {
        Py_ssize_t n;
        if (avro_read_len(c, &n, "a string") < 0) return NULL;
        PyObject *s = PyUnicode_DecodeUTF8((const char *)c->p, n, NULL);
        c->p += n;
        return s;
    }
    case K_RECORD:
        return decode_record(node, c);
    case K_ARRAY:
        return decode_array(node, c);
    case K_MAP:
        return decode_map(node, c);
    case K_UNION: {
        int64_t index;
        if (avro_read_index(c, node->n, &index, "union") < 0) return NULL;
        return decode_node(node->children[index], c);
    }
    case K_ENUM: {
        int64_t index;
        if (avro_read_index(c, node->n, &index, "enum") < 0) return NULL;
        PyObject *sym = PyTuple_GET_ITEM(node->symbols, index);
        Py_INCREF(sym);
        return sym;
    }
    case K_FIXED: {
        if (c->end - c->p < node->n) { avro_eof_error("a fixed"); return NULL; }
        PyObject *b = PyBytes_FromStringAndSize((const char *)c->p, node->n);
        c->p += node->n;
        return b;
    }
    case K_LOGICAL: {
        PyObject *raw = decode_node(node->children[0], c);
        if (raw == NULL) return NULL;
        PyObject *out = PyObject_CallFunctionObjArgs(node->fn, raw, node->schema, Py_None, NULL);
        Py_DECREF(raw);
        return out;
    }
    default:
        PyErr_SetString(PyExc_SystemError, "corrupt schema program");
        return NULL;
    }
}

/* ---- validation only ---------------------------------------------------------------- */
/* The same walk over the same node tree and primitive readers as decode_node, with the
   same strictness, but building nothing: for writers that copy the raw bytes (Avro
   pass-through) and must still refuse a value the decoder would refuse. */

static int skip_text(Cursor *c, const char *what) {
    Py_ssize_t n;
    if (avro_read_len(c, &n, what) < 0) return -1;
    if (!avro_utf8_valid(c->p, n)) return avro_utf8_error(c->p, n);
    c->p += n;
    return 0;
}

static int validate_node(Node *node, Cursor *c) {
    switch (node->kind) {
    case K_NULL:
        return 0;
    case K_BOOLEAN:
        if (c->p >= c->end) { avro_eof_error("a boolean"); return -1; }
        c->p++;
        return 0;
    case K_INT: case K_LONG: {
        int64_t v;
        return avro_read_long(c, &v);
    }
    case K_FLOAT: case K_DOUBLE: case K_FIXED: {
        Py_ssize_t n = node->kind == K_FLOAT ? 4 : node->kind == K_DOUBLE ? 8 : node->n;
        if (c->end - c->p < n) {
            avro_eof_error(node->kind == K_FLOAT ? "a float"
                           : node->kind == K_DOUBLE ? "a double" : "a fixed");
            return -1;
        }
        c->p += n;
        return 0;
    }
    case K_BYTES: {
        Py_ssize_t n;
        if (avro_read_len(c, &n, "bytes") < 0) return -1;
        c->p += n;
        return 0;
    }
    case K_STRING:
        return skip_text(c, "a string");
    case K_RECORD:
        for (Py_ssize_t i = 0; i < node->n; i++)
            if (validate_node(node->children[i], c) < 0) return -1;
        return 0;
    case K_ARRAY: case K_MAP: {
        Node *item = node->children[0];
        int is_map = node->kind == K_MAP;
        for (;;) {
            int64_t count;
            if (avro_read_block_count(c, &count, item->minsize + is_map) < 0) return -1;
            if (count == 0) return 0;
            for (int64_t i = 0; i < count; i++) {
                if (is_map && skip_text(c, "a map key") < 0) return -1;
                if (validate_node(item, c) < 0) return -1;
            }
        }
    }
    case K_UNION: {
        int64_t index;
        if (avro_read_index(c, node->n, &index, "union") < 0) return -1;
        return validate_node(node->children[index], c);
    }
    case K_ENUM: {
        int64_t index;
        return avro_read_index(c, node->n, &index, "enum");
    }
    case K_LOGICAL: {
        /* Rare and small: convert it, since the converter itself may refuse the value. */
        PyObject *out = decode_node(node, c);
        if (out == NULL) return -1;
        Py_DECREF(out);
        return 0;
    }
    default:
        PyErr_SetString(PyExc_SystemError, "corrupt schema program");
        return -1;
    }
}

/* ---- the Reader type ---------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    Node *root;
    PyObject *trailing_exc;
    vectorcallfunc vectorcall;
    ArrowBuilder *arrow;     /* built on first use by arrow_schema/decode_arrow */
    int views;               /* its bytes columns are binary_view (see _arrow.c) */
} Reader;

static PyObject *reader_decode(Reader *self, PyObject *payload) {
    Py_buffer view;
    if (PyObject_GetBuffer(payload, &view, PyBUF_SIMPLE) < 0) return NULL;
    Cursor c = {(const uint8_t *)view.buf, (const uint8_t *)view.buf + view.len, NULL, 0};
    PyObject *out = decode_node(self->root, &c);
    if (out != NULL && c.p != c.end) {
        Py_ssize_t left = (Py_ssize_t)(c.end - c.p);
        PyErr_Format(self->trailing_exc,
                     "%zd bytes left after the record (%zd bytes in all): "
                     "wrong schema for this payload?", left, (Py_ssize_t)view.len);
        Py_CLEAR(out);
    }
    PyBuffer_Release(&view);
    return out;
}

static PyObject *reader_validate(Reader *self, PyObject *payload) {
    Py_buffer view;
    if (PyObject_GetBuffer(payload, &view, PyBUF_SIMPLE) < 0) return NULL;
    Cursor c = {(const uint8_t *)view.buf, (const uint8_t *)view.buf + view.len, NULL, 0};
    int rc = validate_node(self->root, &c);
    if (rc == 0 && c.p != c.end) {
        PyErr_Format(self->trailing_exc,
                     "%zd bytes left after the record (%zd bytes in all): "
                     "wrong schema for this payload?", (Py_ssize_t)(c.end - c.p),
                     (Py_ssize_t)view.len);
        rc = -1;
    }
    PyBuffer_Release(&view);
    if (rc < 0) return NULL;
    Py_RETURN_NONE;
}

static PyObject *reader_vectorcall(PyObject *self, PyObject *const *args, size_t nargsf,
                                   PyObject *kwnames) {
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (nargs != 1 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames) != 0)) {
        PyErr_SetString(PyExc_TypeError, "Reader takes exactly one positional argument");
        return NULL;
    }
    return reader_decode((Reader *)self, args[0]);
}

/* The cyclic GC is paused while a batch is decoded: the thousands of dicts and lists
   of each alert would otherwise start a collection every 700 allocations, each of
   them scanning the young records built so far, which can hold no cycle. It runs as
   usual once the batch is done (and stays off if the caller had turned it off). */
static PyObject *reader_decode_many(Reader *self, PyObject *payloads) {
    PyObject *seq = PySequence_Fast(payloads, "decode_many expects a sequence of payloads");
    if (seq == NULL) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject *out = PyList_New(n);
    if (out == NULL) { Py_DECREF(seq); return NULL; }
#if PY_VERSION_HEX >= 0x030A0000
    int gc_was_on = PyGC_Disable();
#endif
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *rec = reader_decode(self, PySequence_Fast_GET_ITEM(seq, i));
        if (rec == NULL) { Py_CLEAR(out); break; }
        PyList_SET_ITEM(out, i, rec);
    }
#if PY_VERSION_HEX >= 0x030A0000
    if (gc_was_on) PyGC_Enable();
#endif
    Py_DECREF(seq);
    return out;
}

static PyObject *reader_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"program", "trailing_exc", "views", NULL};
    PyObject *program, *trailing_exc = PyExc_ValueError;
    int views = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|Op", kwlist, &program, &trailing_exc,
                                     &views))
        return NULL;
    if (!PyExceptionClass_Check(trailing_exc)) {
        PyErr_SetString(PyExc_TypeError, "trailing_exc must be an exception class");
        return NULL;
    }
    Node *root = avro_node_build(program, 0);
    if (root == NULL) return NULL;
    Reader *self = (Reader *)type->tp_alloc(type, 0);
    if (self == NULL) { avro_node_free(root); return NULL; }
    self->root = root;
    Py_INCREF(trailing_exc);
    self->trailing_exc = trailing_exc;
    self->vectorcall = reader_vectorcall;
    self->views = views;
    return (PyObject *)self;
}

static void reader_dealloc(Reader *self) {
    arrow_builder_free(self->arrow);
    avro_node_free(self->root);
    Py_XDECREF(self->trailing_exc);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static ArrowBuilder *reader_arrow(Reader *self) {
    if (self->arrow == NULL) self->arrow = arrow_builder_new(self->root, self->views);
    return self->arrow;
}

static PyObject *reader_arrow_schema(Reader *self, PyObject *Py_UNUSED(ignored)) {
    ArrowBuilder *b = reader_arrow(self);
    return b == NULL ? NULL : arrow_builder_schema(b);
}

static PyObject *reader_decode_arrow(Reader *self, PyObject *payloads) {
    ArrowBuilder *b = reader_arrow(self);
    return b == NULL ? NULL : arrow_builder_decode(b, payloads, self->trailing_exc);
}

static PyMethodDef reader_methods[] = {
    {"decode_many", (PyCFunction)reader_decode_many, METH_O,
     "Decode a sequence of payloads into a list of records."},
    {"validate", (PyCFunction)reader_validate, METH_O,
     "Check that a payload decodes (same errors as decoding) without building anything."},
    {"arrow_schema", (PyCFunction)reader_arrow_schema, METH_NOARGS,
     "(capsule, address) of an ArrowSchema (C data interface) for decode_arrow's batches.\n"
     "Raises ValueError if the schema has no Arrow equivalent."},
    {"decode_arrow", (PyCFunction)reader_decode_arrow, METH_O,
     "Decode a sequence of payloads into one struct ArrowArray (C data interface):\n"
     "returns (capsule, address); import with pyarrow.RecordBatch._import_from_c.\n"
     "On error, the exception has attribute batch_index (the failing payload)."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ReaderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "fink_client._fastdecode.Reader",
    .tp_doc = "Reader(program, trailing_exc=ValueError, views=False): payload bytes -> "
              "record dict; with views, decode_arrow's bytes columns are binary_view "
              "into the payloads.",
    .tp_basicsize = sizeof(Reader),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_new = reader_new,
    .tp_dealloc = (destructor)reader_dealloc,
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall_offset = offsetof(Reader, vectorcall),
    .tp_methods = reader_methods,
};

static struct PyModuleDef fastdecode_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "fink_client._fastdecode",
    .m_doc = "Schema-compiled schemaless Avro decoder (fast path of fink_client.codec).",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__fastdecode(void) {
    if (PyType_Ready(&ReaderType) < 0) return NULL;
    PyObject *m = PyModule_Create(&fastdecode_module);
    if (m == NULL) return NULL;
    Py_INCREF(&ReaderType);
    if (PyModule_AddObject(m, "Reader", (PyObject *)&ReaderType) < 0) {
        Py_DECREF(&ReaderType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
