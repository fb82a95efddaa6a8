//! `ratelimit-service`: a small `envoy.service.ratelimit.v3.RateLimitService`
//! whose counters live in Redis.
//!
//! Each descriptor is counted in a fixed window aligned to the epoch (months:
//! to the calendar), with `INCRBY` + `EXPIRE` in one atomic pipeline
//! (MULTI/EXEC), as envoyproxy/ratelimit does. The limit comes from the
//! descriptor's `limit` override (the meshward filter always sends one); a
//! descriptor without one is answered OK and not counted.
//! Redis errors answer gRPC UNAVAILABLE, so the caller's failure mode applies;
//! the connection is re-established on the next request.
//!
//! Usage: `ratelimit-service [--listen 127.0.0.1:8081] [--redis redis://127.0.0.1:6379/]
//!                            [--redis-timeout-ms 100]`

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rate_limit::proto::{
    Code, DescriptorStatus, RateLimit, RateLimitRequest, RateLimitResponse, Unit,
};
use tokio::sync::Mutex;
use tonic::body::Body;
use tonic::{Request, Response, Status};

const PATH: &str = "/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit";

struct Args {
    listen: SocketAddr,
    redis: String,
    timeout: Duration,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        listen: SocketAddr::from(([127, 0, 0, 1], 8081)),
        redis: "redis://127.0.0.1:6379/".into(),
        timeout: Duration::from_millis(100),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--listen" => {
                args.listen = value()?.parse().map_err(|e| format!("--listen: {e}"))?;
            }
            "--redis" => args.redis = value()?,
            "--redis-timeout-ms" => {
                let ms: u64 = value()?
                    .parse()
                    .map_err(|e| format!("--redis-timeout-ms: {e}"))?;
                args.timeout = Duration::from_millis(ms.max(1));
            }
            "-h" | "--help" => {
                return Err(
                    "usage: ratelimit-service [--listen ADDR] [--redis URL] [--redis-timeout-ms N]"
                        .into(),
                )
            }
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(args)
}

/// Redis access: one multiplexed connection, re-made after a failure.
struct Store {
    client: redis::Client,
    /// The whole Redis budget of one request: reconnect, commands, waiting
    /// for another request's reconnect.
    timeout: Duration,
    conn: std::sync::Mutex<Option<redis::aio::MultiplexedConnection>>,
    /// One reconnect at a time; the others wait for it (within their deadline).
    connecting: Mutex<()>,
}

impl Store {
    fn new(client: redis::Client, timeout: Duration) -> Store {
        Store {
            client,
            timeout,
            conn: std::sync::Mutex::new(None),
            connecting: Mutex::new(()),
        }
    }

    fn cached(&self) -> Option<redis::aio::MultiplexedConnection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Drop the connection so the next request makes a new one. Never waits,
    /// so it cannot push a request past its deadline.
    fn forget(&self) {
        *self.conn.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    async fn connection(&self) -> Result<redis::aio::MultiplexedConnection, redis::RedisError> {
        if let Some(c) = self.cached() {
            return Ok(c);
        }
        let _one = self.connecting.lock().await;
        if let Some(c) = self.cached() {
            return Ok(c);
        }
        // The caller's deadline bounds all of this; these only stop a
        // connection from outliving it.
        let cfg = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout));
        let c = self
            .client
            .get_multiplexed_async_connection_with_config(&cfg)
            .await?;
        *self.conn.lock().unwrap_or_else(|e| e.into_inner()) = Some(c.clone());
        Ok(c)
    }

    /// Atomically add `hits` to the key's counter and set its expiry, by
    /// `deadline` (which also covers a reconnect).
    async fn incr(
        &self,
        key: &str,
        hits: u64,
        ttl_s: u64,
        deadline: tokio::time::Instant,
    ) -> Result<u64, Status> {
        let work = async {
            let mut conn = self.connection().await?;
            let mut pipe = redis::pipe();
            pipe.atomic()
                .cmd("INCRBY")
                .arg(key)
                .arg(hits)
                .cmd("EXPIRE")
                .arg(key)
                .arg(ttl_s)
                .ignore();
            pipe.query_async::<(u64,)>(&mut conn).await
        };
        match tokio::time::timeout_at(deadline, work).await {
            Ok(Ok((count,))) => Ok(count),
            Ok(Err(e)) => {
                self.forget();
                Err(Status::unavailable(format!("redis: {e}")))
            }
            Err(_) => {
                self.forget();
                Err(Status::unavailable("redis: timed out"))
            }
        }
    }
}

/// Window start and end (unix seconds) for `unit` at `now`.
fn window(unit: Unit, now: u64) -> Option<(u64, u64)> {
    let len = match unit {
        Unit::Second | Unit::Minute | Unit::Hour | Unit::Day => unit.seconds(),
        Unit::Month => {
            let (y, m) = civil_month(now / 86_400);
            let start = days_from_civil(y, m) * 86_400;
            let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
            return Some((start, days_from_civil(ny, nm) * 86_400));
        }
        Unit::Year => {
            let (y, _) = civil_month(now / 86_400);
            return Some((
                days_from_civil(y, 1) * 86_400,
                days_from_civil(y + 1, 1) * 86_400,
            ));
        }
        Unit::Unknown => return None,
    };
    let start = now - now % len;
    Some((start, start + len))
}

/// (year, month) of a day number since 1970-01-01 (proleptic Gregorian).
fn civil_month(days: u64) -> (u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m)
}

/// Day number of the first day of (year, month).
fn days_from_civil(y: u64, m: u64) -> u64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe).saturating_sub(719_468)
}

/// The Redis key: domain, entries, unit and window start. Every client-supplied
/// string is length-prefixed (`<bytes>:<text>`), so no value can forge a
/// separator and collide with another descriptor's key; the unit and window
/// come after `#`, which cannot start a length.
fn redis_key(domain: &str, entries: &[(String, String)], unit: Unit, start: u64) -> String {
    use std::fmt::Write;
    let mut k = String::with_capacity(32 + domain.len() + entries.len() * 32);
    let _ = write!(k, "mwrl:{}:{domain}", domain.len());
    for (key, value) in entries {
        let _ = write!(k, "|{}:{key}={}:{value}", key.len(), value.len());
    }
    let _ = write!(k, "|#{}:{start}", unit as i32);
    k
}

async fn should_rate_limit(
    store: &Store,
    req: RateLimitRequest,
) -> Result<RateLimitResponse, Status> {
    if req.domain.is_empty() {
        return Err(Status::invalid_argument("domain is required"));
    }
    if req.descriptors.is_empty() {
        return Err(Status::invalid_argument(
            "at least one descriptor is required",
        ));
    }
    let hits = u64::from(req.hits_addend.max(1));
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|_| Status::internal("clock before 1970"))?;
    let now_s = now.as_secs();
    // one Redis budget for the whole request, as `--redis-timeout-ms` promises
    let deadline = tokio::time::Instant::now() + store.timeout;
    let mut overall = Code::Ok;
    let mut statuses = Vec::with_capacity(req.descriptors.len());
    for d in &req.descriptors {
        let Some(limit) = d.limit.as_ref() else {
            statuses.push(DescriptorStatus {
                code: Code::Ok as i32,
                ..DescriptorStatus::default()
            });
            continue;
        };
        let unit = Unit::try_from(limit.unit).unwrap_or(Unit::Unknown);
        let Some((start, end)) = window(unit, now_s) else {
            return Err(Status::invalid_argument("descriptor limit has no unit"));
        };
        let entries: Vec<(String, String)> = d
            .entries
            .iter()
            .map(|e| (e.key.clone(), e.value.clone()))
            .collect();
        let key = redis_key(&req.domain, &entries, unit, start);
        let count = store.incr(&key, hits, end - start + 1, deadline).await?;
        let max = u64::from(limit.requests_per_unit);
        let over = count > max;
        if over {
            overall = Code::OverLimit;
        }
        let until = Duration::from_secs(end).saturating_sub(now);
        statuses.push(DescriptorStatus {
            code: if over { Code::OverLimit } else { Code::Ok } as i32,
            current_limit: Some(RateLimit {
                requests_per_unit: limit.requests_per_unit,
                unit: limit.unit,
                name: String::new(),
            }),
            limit_remaining: u32::try_from(max.saturating_sub(count)).unwrap_or(u32::MAX),
            duration_until_reset: Some(rate_limit::proto::Duration {
                seconds: i64::try_from(until.as_secs()).unwrap_or(0),
                nanos: i32::try_from(until.subsec_nanos()).unwrap_or(0),
            }),
        });
    }
    Ok(RateLimitResponse {
        overall_code: overall as i32,
        statuses,
    })
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// The one unary method, as tonic's `UnaryService`.
struct Method(Arc<Store>);

impl tonic::server::UnaryService<RateLimitRequest> for Method {
    type Response = RateLimitResponse;
    type Future = BoxFuture<Result<Response<RateLimitResponse>, Status>>;

    fn call(&mut self, request: Request<RateLimitRequest>) -> Self::Future {
        let store = Arc::clone(&self.0);
        Box::pin(async move {
            should_rate_limit(&store, request.into_inner())
                .await
                .map(Response::new)
        })
    }
}

/// The HTTP/2 service: routes the one path, answers UNIMPLEMENTED otherwise.
#[derive(Clone)]
struct Rls(Arc<Store>);

impl tower_service::Service<http::Request<Body>> for Rls {
    type Response = http::Response<Body>;
    type Error = std::convert::Infallible;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let store = Arc::clone(&self.0);
        Box::pin(async move {
            if req.uri().path() != PATH {
                return Ok(Status::unimplemented("unknown method").into_http());
            }
            let codec = tonic_prost::ProstCodec::<RateLimitResponse, RateLimitRequest>::default();
            let mut grpc = tonic::server::Grpc::new(codec);
            Ok(grpc.unary(Method(store), req).await)
        })
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("ratelimit-service: {e}");
            std::process::exit(2);
        }
    };
    let client = match redis::Client::open(args.redis.as_str()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ratelimit-service: bad --redis url: {e}");
            std::process::exit(2);
        }
    };
    let store = Arc::new(Store::new(client, args.timeout));
    eprintln!(
        "ratelimit-service: listening on {} (redis {})",
        args.listen, args.redis
    );
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let served = tonic::transport::Server::builder()
        .serve_with_shutdown(args.listen, Rls(store), shutdown)
        .await;
    if let Err(e) = served {
        eprintln!("ratelimit-service: {e}");
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_align() {
        assert_eq!(window(Unit::Minute, 125), Some((120, 180)));
        assert_eq!(
            window(Unit::Day, 86_400 * 3 + 5),
            Some((86_400 * 3, 86_400 * 4))
        );
        // 2026-11-27 -> November 2026
        let now = 1_795_737_600; // 2026-11-27T00:00:00Z
        let (s, e) = window(Unit::Month, now).unwrap();
        assert_eq!(s, 1_793_491_200); // 2026-11-01
        assert_eq!(e, 1_796_083_200); // 2026-12-01
        assert_eq!(window(Unit::Unknown, 5), None);
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_month(0), (1970, 1));
        assert_eq!(days_from_civil(1970, 1), 0);
        assert_eq!(days_from_civil(2000, 3), 11_017);
        assert_eq!(civil_month(11_017), (2000, 3));
    }

    #[test]
    fn keys_name_everything() {
        let k = redis_key(
            "d",
            &[("rule".into(), "r".into()), ("sub".into(), "a".into())],
            Unit::Minute,
            60,
        );
        assert_eq!(k, "mwrl:1:d|4:rule=1:r|3:sub=1:a|#2:60");
    }

    /// Regression: entries were joined as `|k=v`, so a value holding `|k=v`
    /// shared a counter with another descriptor.
    #[test]
    fn keys_cannot_be_forged_by_values() {
        let e = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let pairs = [
            (
                e(&[("rule", "r"), ("sub", "a|sub=b")]),
                e(&[("rule", "r"), ("sub", "a"), ("sub", "b")]),
            ),
            (e(&[("a", "b=c")]), e(&[("a=b", "c")])),
            (e(&[("a", "1|#2:60")]), e(&[("a", "1")])),
            (e(&[("k", "v")]), e(&[("k", "v"), ("", "")])),
            (e(&[("k", "")]), e(&[])),
        ];
        for (a, b) in pairs {
            assert_ne!(
                redis_key("d", &a, Unit::Minute, 60),
                redis_key("d", &b, Unit::Minute, 60),
                "{a:?} vs {b:?}"
            );
        }
        assert_ne!(
            redis_key("d|rule=r", &[], Unit::Minute, 60),
            redis_key("d", &e(&[("rule", "r")]), Unit::Minute, 60)
        );
        // multi-byte text: lengths are in bytes
        assert_eq!(
            redis_key("d", &e(&[("k", "é")]), Unit::Second, 1),
            "mwrl:1:d|1:k=2:é|#1:1"
        );
    }

    /// A Redis that accepts connections and never answers (SIGSTOPped).
    async fn frozen_redis() -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((sock, _)) = listener.accept().await {
                held.push(sock);
            }
        });
        (addr, task)
    }

    fn request() -> RateLimitRequest {
        RateLimitRequest {
            domain: "d".into(),
            descriptors: vec![rate_limit::proto::RateLimitDescriptor {
                entries: vec![rate_limit::proto::Entry {
                    key: "rule".into(),
                    value: "r".into(),
                }],
                limit: Some(rate_limit::proto::RateLimitOverride {
                    requests_per_unit: 5,
                    unit: Unit::Minute as i32,
                }),
            }],
            hits_addend: 1,
        }
    }

    /// Regression: a frozen Redis took a connect/handshake timeout plus a
    /// command timeout (about 2 x 100 ms). The whole request gets one deadline.
    #[tokio::test]
    async fn a_frozen_redis_answers_unavailable_within_the_timeout() {
        let (addr, task) = frozen_redis().await;
        let client = redis::Client::open(format!("redis://{addr}/")).expect("url");
        let store = Store::new(client, Duration::from_millis(100));
        for round in 0..3 {
            let t = std::time::Instant::now();
            let err = should_rate_limit(&store, request())
                .await
                .expect_err("unavailable");
            let took = t.elapsed();
            assert_eq!(err.code(), tonic::Code::Unavailable, "{err}");
            assert!(
                took >= Duration::from_millis(95) && took < Duration::from_millis(160),
                "round {round}: {took:?}"
            );
        }
        task.abort();
    }

    /// Concurrent requests waiting for one reconnect still meet their deadline.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn requests_queued_behind_a_reconnect_keep_their_deadline() {
        let (addr, task) = frozen_redis().await;
        let client = redis::Client::open(format!("redis://{addr}/")).expect("url");
        let store = Arc::new(Store::new(client, Duration::from_millis(100)));
        let t = std::time::Instant::now();
        let calls: Vec<_> = (0..8)
            .map(|_| {
                let s = Arc::clone(&store);
                tokio::spawn(async move { should_rate_limit(&s, request()).await })
            })
            .collect();
        for c in calls {
            let r = c.await.expect("joined");
            assert!(r.is_err());
        }
        assert!(
            t.elapsed() < Duration::from_millis(180),
            "{:?}",
            t.elapsed()
        );
        task.abort();
    }
}
