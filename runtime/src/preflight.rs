//! Start-up checks of the database server's pgvector: that `CREATE EXTENSION vector` works, that
//! the installed extension is the server's current version, and that the server can compute
//! what search needs — cosine distances at the dimensions our embedders produce and the sparse
//! inner product of full-text scoring — on this CPU.
//!
//! The checks exist because a pgvector built for instructions the CPU lacks (AVX-512 on most
//! AMD and recent Intel client CPUs, SVE on older Arm servers) starts, creates its extension and
//! stores vectors without complaint, then kills the backend with SIGILL on the first distance.
//! Found here, that is one clear message at start-up instead of a server that accepts every
//! message and never answers one.

use sqlx::{Connection, PgConnection};
use tracing::{info, warn};

/// What was checked, for the start-up log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VectorCheck {
    /// pgvector's version after the check (updated if the server offered a newer one).
    pub version: String,
    /// Dimensions whose distance was computed.
    pub dimensions: Vec<usize>,
}

/// Why the database cannot serve Switchboard.
#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    #[error("cannot connect to the database to check pgvector: {0}")]
    Connect(#[source] sqlx::Error),
    #[error(
        "the PostgreSQL server has no pgvector extension (`vector` is not in \
         pg_available_extensions). Install pgvector on that server, or unset DATABASE_URL to use \
         the embedded PostgreSQL (scripts/setup.sh installs it)"
    )]
    NotAvailable,
    #[error("`CREATE EXTENSION vector` failed: {0}. The login in DATABASE_URL must be allowed to create it, or an administrator creates it once beforehand")]
    CreateFailed(#[source] sqlx::Error),
    #[error(
        "the PostgreSQL server's pgvector crashed computing {what} (the connection was lost: {source}). \
         This is what a pgvector built for CPU instructions this machine lacks does (AVX-512 on \
         x86-64, SVE on Arm). Use binaries built for this CPU: `scripts/setup.sh` installs portable \
         ones for the embedded server; with DATABASE_URL, use a server whose pgvector works here"
    )]
    Crashed {
        what: String,
        #[source]
        source: sqlx::Error,
    },
    #[error(
        "the PostgreSQL server's pgvector computed {what} wrongly: {got} instead of {expected}"
    )]
    WrongResult {
        what: String,
        got: f64,
        expected: f64,
    },
    #[error("checking pgvector failed while computing {what}: {source}")]
    Query {
        what: String,
        #[source]
        source: sqlx::Error,
    },
}

/// Makes sure `vector` is installed and current on the database of `owner_url`, the schema
/// owner's login. Run before the migrations, so a missing extension is reported as such.
pub async fn ensure_extension(owner_url: &str) -> Result<String, PreflightError> {
    let mut conn = PgConnection::connect(owner_url)
        .await
        .map_err(PreflightError::Connect)?;
    let available: Option<(String, Option<String>)> = sqlx::query_as(
        "SELECT default_version, installed_version FROM pg_available_extensions WHERE name = 'vector'",
    )
    .fetch_optional(&mut conn)
    .await
    .map_err(|source| PreflightError::Query {
        what: "the available extensions".into(),
        source,
    })?;
    let Some((default_version, installed)) = available else {
        return Err(PreflightError::NotAvailable);
    };
    match installed {
        None => {
            sqlx::query("CREATE EXTENSION IF NOT EXISTS vector")
                .execute(&mut conn)
                .await
                .map_err(PreflightError::CreateFailed)?;
        }
        Some(v) if v != default_version => {
            // The server's binaries are newer than the extension's SQL objects (a data
            // directory from an older release): bring them level, as pgvector asks.
            match sqlx::query("ALTER EXTENSION vector UPDATE")
                .execute(&mut conn)
                .await
            {
                Ok(_) => info!(from = %v, to = %default_version, "updated the pgvector extension"),
                Err(e) => warn!(
                    installed = %v,
                    available = %default_version,
                    error = %e,
                    "could not update the pgvector extension (an administrator can run ALTER EXTENSION vector UPDATE)"
                ),
            }
        }
        Some(_) => {}
    }
    let version: String =
        sqlx::query_scalar("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
            .fetch_one(&mut conn)
            .await
            .map_err(|source| PreflightError::Query {
                what: "the installed pgvector version".into(),
                source,
            })?;
    let _ = conn.close().await;
    Ok(version)
}

/// Computes, on a connection of its own, the cosine distance of two known vectors at each of
/// `dimensions`, and a sparse inner product, and compares them with the exact values.
pub async fn check_distances(
    url: &str,
    dimensions: &[usize],
) -> Result<VectorCheck, PreflightError> {
    let mut conn = PgConnection::connect(url)
        .await
        .map_err(PreflightError::Connect)?;
    let version: String =
        sqlx::query_scalar("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
            .fetch_optional(&mut conn)
            .await
            .map_err(|source| PreflightError::Query {
                what: "the installed pgvector version".into(),
                source,
            })?
            .ok_or(PreflightError::NotAvailable)?;
    let mut checked = Vec::new();
    for &dims in dimensions {
        let (a, b, expected) = probe_vectors(dims);
        let what = format!("a cosine distance of {dims}-dimension vectors");
        let got: f64 = sqlx::query_scalar("SELECT ($1::real[])::vector <=> ($2::real[])::vector")
            .bind(&a)
            .bind(&b)
            .fetch_one(&mut conn)
            .await
            .map_err(|e| classify(&what, e))?;
        compare(&what, got, expected)?;
        checked.push(dims);
    }
    // Full-text scores are the inner product of sparse vectors (`<#>` is its negation).
    let what = "a sparse inner product".to_owned();
    let got: f64 = sqlx::query_scalar(
        "SELECT -('{1:1.5,3:2,70:0.5}/100'::sparsevec <#> '{3:4,9:1,70:2}/100'::sparsevec)",
    )
    .fetch_one(&mut conn)
    .await
    .map_err(|e| classify(&what, e))?;
    compare(&what, got, 2.0 * 4.0 + 0.5 * 2.0)?;
    let _ = conn.close().await;
    Ok(VectorCheck {
        version,
        dimensions: checked,
    })
}

/// Two vectors of `dims` dimensions that use every element (so no vectorised loop or its
/// remainder is skipped), and their exact cosine distance.
fn probe_vectors(dims: usize) -> (Vec<f32>, Vec<f32>, f64) {
    let a: Vec<f32> = (0..dims).map(|i| 1.0 + (i % 7) as f32).collect();
    let b: Vec<f32> = (0..dims).map(|i| 1.0 + ((i * 3) % 5) as f32).collect();
    let (mut dot, mut na, mut nb) = (0f64, 0f64, 0f64);
    for (x, y) in a.iter().zip(&b) {
        let (x, y) = (f64::from(*x), f64::from(*y));
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    (a, b, 1.0 - dot / (na.sqrt() * nb.sqrt()))
}

fn compare(what: &str, got: f64, expected: f64) -> Result<(), PreflightError> {
    if (got - expected).abs() <= 1e-4 * expected.abs().max(1.0) {
        Ok(())
    } else {
        Err(PreflightError::WrongResult {
            what: what.to_owned(),
            got,
            expected,
        })
    }
}

/// A lost connection during a distance is the backend dying; anything else is an error of the
/// query.
fn classify(what: &str, e: sqlx::Error) -> PreflightError {
    let lost = match &e {
        sqlx::Error::Io(_) | sqlx::Error::Protocol(_) => true,
        // The postmaster ends every other session when one backend crashes.
        sqlx::Error::Database(d) => {
            matches!(d.code().as_deref(), Some("57P01" | "57P02" | "57P03"))
        }
        _ => false,
    };
    if lost {
        PreflightError::Crashed {
            what: what.to_owned(),
            source: e,
        }
    } else {
        PreflightError::Query {
            what: what.to_owned(),
            source: e,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_vectors_have_the_stated_distance() {
        for dims in [1, 3, 384, 768, 1000] {
            let (a, b, d) = probe_vectors(dims);
            assert_eq!((a.len(), b.len()), (dims, dims));
            assert!((0.0..1.0).contains(&d), "{dims}: {d}");
        }
        // Identical directions have distance 0.
        let (a, _, _) = probe_vectors(8);
        let same: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum();
        assert!(same > 0.0);
        assert!(compare("x", 0.25, 0.25).is_ok());
        assert!(compare("x", 0.26, 0.25).is_err());
    }

    #[test]
    fn a_lost_connection_is_reported_as_a_crash_with_advice() {
        let e = classify(
            "a cosine distance of 768-dimension vectors",
            sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::UnexpectedEof)),
        );
        let text = e.to_string();
        assert!(matches!(e, PreflightError::Crashed { .. }));
        assert!(text.contains("768-dimension"), "{text}");
        assert!(text.contains("AVX-512"), "{text}");
        assert!(text.contains("scripts/setup.sh"), "{text}");
        assert!(matches!(
            classify("x", sqlx::Error::RowNotFound),
            PreflightError::Query { .. }
        ));
    }
}
