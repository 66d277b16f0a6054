// Per-packet stackalloc scratch buffers are always written before they are read; zeroing them is wasted work.
[module: System.Runtime.CompilerServices.SkipLocalsInit]
