//! Disk queue (in progress).
