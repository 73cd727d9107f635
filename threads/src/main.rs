//! threads: several threads of one process, sharing its memory.
//!
//! The lab names four pthread calls; here is each one in Rust:
//!
//! | pthread               | Rust                                   |
//! |-----------------------|----------------------------------------|
//! | `pthread_create`      | `thread::spawn` / `Scope::spawn`       |
//! | `pthread_join`        | `JoinHandle::join` (or a scope's end)  |
//! | `pthread_mutex_lock`  | `Mutex::lock` (unlocked when the guard is dropped) |
//! | `pthread_exit`        | returning from the thread's closure    |
//!
//! Three parts: threads that print their own message and id and return a
//! value to `join`; a counter that they all increment under a mutex (the
//! total is always right); and the same counter incremented with a separate
//! read and write (an atomic load, then an atomic store: safe Rust, but not
//! one indivisible step), where increments made at the same time overwrite
//! each other and get lost.
//!
//! Run: `make && ./threads`

#![deny(clippy::undocumented_unsafe_blocks)]

use std::process;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Barrier, Mutex, PoisonError};
use std::thread;

use nix::unistd::{getpid, gettid};

/// Threads created in each part.
const THREADS: u64 = 4;
/// Increments each thread makes to the shared counters.
const INCREMENTS: u64 = 1_000_000;
/// The pause between the read and the write of an unguarded increment.
const WORK: u32 = 20;

fn main() {
    println!("[main] process {}, thread {}: creating {THREADS} threads (pthread_create)", getpid(), gettid());
    greetings();
    let guarded = count_with_mutex();
    let unguarded = count_without_mutex();
    let expected = THREADS * INCREMENTS;
    println!("[main] with a mutex:    counter = {guarded} (expected {expected})");
    println!(
        "[main] without a mutex: counter = {unguarded} (expected {expected}): {} updates lost",
        expected - unguarded
    );
}

/// Each thread prints its message and ids and returns a number to `join`.
fn greetings() {
    let handles: Vec<_> = (1..=THREADS)
        .map(|n| {
            thread::spawn(move || {
                println!("[thread {n}] hello from thread {n}: process {}, thread id {}", getpid(), gettid());
                n * 100 // the thread's result, what pthread_exit would hand to pthread_join
            })
        })
        .collect();
    for (n, handle) in (1..).zip(handles) {
        match handle.join() {
            Ok(value) => println!("[main] joined thread {n} (pthread_join): it returned {value}"),
            Err(_) => {
                eprintln!("threads: thread {n} panicked");
                process::exit(1);
            }
        }
    }
}

/// All threads increment one counter, each increment under the mutex.
fn count_with_mutex() -> u64 {
    let counter = Mutex::new(0u64);
    let start = Barrier::new(THREADS as usize);
    // A scope joins every thread it spawned before it ends.
    thread::scope(|scope| {
        for _ in 0..THREADS {
            scope.spawn(|| {
                start.wait();
                for _ in 0..INCREMENTS {
                    // pthread_mutex_lock; the unlock happens when `value` goes away.
                    let mut value = counter.lock().unwrap_or_else(PoisonError::into_inner);
                    *value += 1;
                }
            });
        }
    });
    counter.into_inner().unwrap_or_else(PoisonError::into_inner)
}

/// All threads increment one counter with a read and a separate write.
/// Two threads that read the same value both write value + 1: one
/// increment is lost.
fn count_without_mutex() -> u64 {
    let counter = AtomicU64::new(0);
    let start = Barrier::new(THREADS as usize);
    thread::scope(|scope| {
        for _ in 0..THREADS {
            scope.spawn(|| {
                start.wait();
                for _ in 0..INCREMENTS {
                    let value = counter.load(Ordering::Relaxed);
                    // Between this read and the write below, another thread
                    // may write: its increment is then overwritten. The
                    // pause (a little work, as a real update would do)
                    // keeps that window open most of the time, so that
                    // the loss shows on any machine, even with threads
                    // taking turns on a single CPU: a switch of threads
                    // there lands in it, and every increment the other
                    // threads make meanwhile is lost.
                    for _ in 0..WORK {
                        std::hint::spin_loop();
                    }
                    counter.store(value + 1, Ordering::Relaxed);
                }
            });
        }
    });
    counter.into_inner()
}
