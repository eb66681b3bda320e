// Anchor source for libkiln.so; the code comes from the whole kiln_core archive.
namespace kiln { int shared_library_anchor = 0; }
