//! The `tern` binary: daemon and command-line interface.

fn main() -> std::process::ExitCode {
    tern::cli::main()
}
