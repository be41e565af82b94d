fn main() -> std::process::ExitCode {
    driftless::run(std::env::args_os())
}
