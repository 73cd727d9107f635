//! The teacher's side of the lab, kept out of what students receive (see
//! `make handout`): the answer keys, the reference solution of exercises
//! 5 to 7, the grading of a course's submissions, and the tests that need
//! them. Its guide is `teacher/PROFESORADO.md` (in English,
//! `teacher/TEACHING.md`).
//!
//! The grading (`teacher/grade FOLDER`, the binary `src/bin/grade.rs`)
//! reads in the order of these modules: `submission` finds and opens each
//! submission safely, `answers` counts its answered questions, `grade`
//! builds and checks it and writes its CSV line, `processes` bounds every
//! command in time and stops all it leaves; `json` reads the checker.

#![deny(clippy::undocumented_unsafe_blocks)]

pub mod answers;
pub mod grade;
pub mod isolation;
pub mod json;
pub mod processes;
pub mod submission;
