//! The `sage` binary: parse arguments, run a command, map errors to exit codes
//! (0 ok, 1 the operation found a problem or failed, 2 usage). A closed stdout (`sage log |
//! head`) ends the command quietly with 0.

mod cli;

fn main() {
    let code = match cli::run() {
        Ok(code) => code,
        Err(e) => {
            if is_broken_pipe(&e) {
                0
            } else {
                eprintln!("sage: {e:#}");
                e.downcast_ref::<sage::Error>()
                    .map(|e| e.exit_code())
                    .unwrap_or(1)
            }
        }
    };
    std::process::exit(code);
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>().map(|io| io.kind() == std::io::ErrorKind::BrokenPipe).unwrap_or(false)
            || matches!(c.downcast_ref::<sage::Error>(), Some(sage::Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
