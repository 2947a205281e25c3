"""Minimal GGUF metadata reader (standard library only) for tokgolden."""
import struct

_SCALARS = {
    0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
    10: "<Q", 11: "<q", 12: "<d",
}


class _Reader:
    def __init__(self, data):
        self.data = data
        self.off = 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.data, self.off)[0]
        self.off += struct.calcsize(fmt)
        return v

    def string(self):
        n = self.take("<Q")
        s = self.data[self.off:self.off + n]
        self.off += n
        return s.decode("utf-8", errors="surrogateescape")

    def value(self, typ):
        if typ in _SCALARS:
            return self.take(_SCALARS[typ])
        if typ == 8:
            return self.string()
        if typ == 9:
            et = self.take("<I")
            n = self.take("<Q")
            return [self.value(et) for _ in range(n)]
        raise ValueError("unknown gguf value type %d" % typ)


def read_metadata(path):
    """Returns the GGUF key/value metadata of path as a dict."""
    with open(path, "rb") as f:
        data = f.read()
    r = _Reader(data)
    if data[:4] != b"GGUF":
        raise ValueError("not a gguf file")
    r.off = 4
    version = r.take("<I")
    if version not in (2, 3):
        raise ValueError("unsupported gguf version %d" % version)
    r.take("<Q")  # tensor count
    nkv = r.take("<Q")
    meta = {}
    for _ in range(nkv):
        key = r.string()
        typ = r.take("<I")
        meta[key] = r.value(typ)
    return meta
