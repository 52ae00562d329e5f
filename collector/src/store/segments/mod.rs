//! Store version 1: append-only segment files. (Being written.)
