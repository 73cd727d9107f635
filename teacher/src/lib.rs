//! The teacher's side of the lab, kept out of what students receive (see
//! `make handout`): the answer keys, the reference solution of exercises
//! 5 to 7, the grading of a course's submissions, and the tests that need
//! them. Its guide is `teacher/PROFESORADO.md` (in English,
//! `teacher/TEACHING.md`).
