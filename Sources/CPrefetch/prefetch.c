// The prefetch hint is a static inline function in include/prefetch.h; SwiftPM needs one source file for a C target.
