//! The `pinfold` binary: a thin shell over the library (see `pinfold::cli`).

fn main() {
    // Rust ignores SIGPIPE, so `pinfold inspect … | head` would panic in `println!`
    // when head exits. A command-line tool should end quietly instead, as cat does.
    // SAFETY: called before any thread exists; resets one signal to its default action.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    std::process::exit(pinfold::cli::main());
}
