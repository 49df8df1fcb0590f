//! The `pinfold` binary: a thin shell over the library (see `pinfold::cli`).

fn main() {
    std::process::exit(pinfold::cli::main());
}
