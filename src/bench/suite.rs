//! The whole benchmark (`make bench`).
