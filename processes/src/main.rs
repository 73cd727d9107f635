//! processes: what fork(2) does to memory.
//!
//! A variable `test` is set before the fork. The child changes it; the
//! parent waits for the child and then prints its own copy. Both print the
//! variable's address too: it is the same address in both processes, yet
//! the values differ. After fork each process has its own memory, a copy of
//! the parent's (made lazily, page by page, when one of them writes: copy on
//! write), at the same virtual addresses. Threads, by contrast, share one
//! memory (see ../threads).
//!
//! Run: `make && ./processes`

#![deny(clippy::undocumented_unsafe_blocks)]

use std::hint::black_box;
use std::io::Write;
use std::process;

use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, getpid, getppid, ForkResult};

fn main() {
    let mut test: i32 = 10;
    // black_box keeps the compiler from holding `test` in a register only:
    // it must live in memory, at an address we can print.
    let address = black_box(&mut test) as *mut i32;
    println!("[parent {}] before fork: test = {test}, at address {address:p}", getpid());
    // Anything still buffered would be copied into the child and printed twice.
    let _ = std::io::stdout().flush();

    // SAFETY: this program has a single thread, so the child gets a
    // consistent copy of the process and may run ordinary code.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            test = 20;
            println!(
                "[child  {}] my parent is {}; I set test = {}, at address {address:p}",
                getpid(),
                getppid(),
                black_box(test)
            );
            let _ = std::io::stdout().flush();
            process::exit(0);
        }
        Ok(ForkResult::Parent { child }) => {
            match waitpid(child, None) {
                Ok(WaitStatus::Exited(_, code)) => {
                    println!("[parent {}] child {child} exited with status {code}", getpid())
                }
                Ok(other) => println!("[parent {}] child {child} ended: {other:?}", getpid()),
                Err(errno) => eprintln!("processes: waitpid: {errno}"),
            }
            println!(
                "[parent {}] after the child: test = {}, at address {address:p}",
                getpid(),
                black_box(test)
            );
        }
        Err(errno) => {
            eprintln!("processes: fork: {errno}");
            process::exit(1);
        }
    }
}
