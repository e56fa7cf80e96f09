//! The command line of docs/configuration.md, with argh.

use argh::FromArgs;

/// pganalytics-collector: PostgreSQL and host metrics for pgAnalytics, from one static binary.
#[derive(FromArgs, Debug)]
pub struct Cli {
    /// print the version and exit
    #[argh(switch)]
    pub version: bool,
    #[argh(subcommand)]
    pub command: Option<Command>,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum Command {
    Once(Once),
    Run(Run),
    Register(Register),
    CheckConfig(CheckConfig),
}

/// Collect every enabled plugin once and print the push envelope as JSON.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "once")]
pub struct Once {
    /// config file (default: $PGANALYTICS_CONFIG, else /etc/pganalytics/collector.toml if present)
    #[argh(option, short = 'c')]
    pub config: Option<String>,
    /// indent the JSON
    #[argh(switch)]
    pub pretty: bool,
    /// print exactly these types, comma-separated (collector_health only if named)
    #[argh(option)]
    pub only: Option<String>,
    /// milliseconds between the rate baseline and the sample (default 250)
    #[argh(option, default = "250")]
    pub sample_ms: u64,
}

/// Run the collector until SIGTERM.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "run")]
pub struct Run {
    /// config file (default: $PGANALYTICS_CONFIG, else /etc/pganalytics/collector.toml)
    #[argh(option, short = 'c')]
    pub config: Option<String>,
    /// write each push round's envelope as one JSON line to stdout instead of sending it
    #[argh(switch)]
    pub stdout: bool,
    /// one round (every enabled plugin once, one push), then exit 0 only if delivered
    #[argh(switch)]
    pub once: bool,
}

/// Register with the backend and print the collector id.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "register")]
pub struct Register {
    /// config file
    #[argh(option, short = 'c')]
    pub config: Option<String>,
    /// file holding the registration secret (else $PGANALYTICS_REGISTRATION_SECRET)
    #[argh(option)]
    pub secret_file: Option<String>,
    /// collector name (default: the host name)
    #[argh(option)]
    pub name: Option<String>,
    /// register again although an id exists (creates a new collector)
    #[argh(switch)]
    pub force: bool,
}

/// Validate the configuration and print the effective settings.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "check-config")]
pub struct CheckConfig {
    /// config file (default: $PGANALYTICS_CONFIG, else /etc/pganalytics/collector.toml)
    #[argh(option, short = 'c')]
    pub config: Option<String>,
}

/// Parses `args` (without the program name). `Err` carries argh's text and the exit code:
/// 0 for `--help`, 2 for a usage error.
pub fn parse(program: &str, args: &[&str]) -> Result<Cli, (String, i32)> {
    Cli::from_args(&[program], args).map_err(|early| match early.status {
        Ok(()) => (early.output, 0),
        Err(()) => (early.output, 2),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_of_the_spec_parse() {
        let cli = parse(
            "p",
            &["once", "--pretty", "--only", "sysstat", "--sample-ms", "10"],
        )
        .unwrap();
        match cli.command {
            Some(Command::Once(o)) => {
                assert!(o.pretty);
                assert_eq!(o.only.as_deref(), Some("sysstat"));
                assert_eq!(o.sample_ms, 10);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse("p", &["run", "-c", "f", "--stdout", "--once"])
                .unwrap()
                .command,
            Some(Command::Run(Run {
                stdout: true,
                once: true,
                ..
            }))
        ));
        assert!(matches!(
            parse("p", &["check-config"]).unwrap().command,
            Some(Command::CheckConfig(_))
        ));
        assert!(matches!(
            parse("p", &["register", "--secret-file", "s", "--force"])
                .unwrap()
                .command,
            Some(Command::Register(Register { force: true, .. }))
        ));
        assert!(parse("p", &["--version"]).unwrap().version);
    }

    #[test]
    fn help_is_exit_0_and_usage_errors_exit_2() {
        assert_eq!(parse("p", &["--help"]).unwrap_err().1, 0);
        assert_eq!(parse("p", &["bogus"]).unwrap_err().1, 2);
        assert_eq!(parse("p", &["once", "--sample-ms", "x"]).unwrap_err().1, 2);
    }
}
