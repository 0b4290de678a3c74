//! A fault-injecting HTTP/1.1 proxy in front of moto (issue 16, "S3 faults"): it forwards every
//! request and answers a configurable share of each kind of S3 request (PUT, conditional PUT,
//! GET, HEAD, LIST, DELETE) with a 500 InternalError, a 503 SlowDown (S3's XML error bodies), a
//! reset connection (before or after moto saw the request), a connection closed after moto did
//! the request, or a slow answer; or, while it is
//! "down", every request with one fault. Plain tokio sockets, one request per connection
//! (`Connection: close` both ways), so no pooled connection is ever half-used.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use super::moto::Moto;

/// What an S3 request does, as the proxy tells it from its method, query and headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Op {
    Put,
    /// A PUT with `If-None-Match` or `If-Match`: a Delta commit (put-if-absent).
    CondPut,
    Get,
    Head,
    List,
    /// DELETE, or POST `?delete` (many keys at once).
    Delete,
    /// Anything else (multipart POSTs, Glue and Athena calls): never faulted.
    Other,
}

/// One injected fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fault {
    /// 500 InternalError, not forwarded.
    Internal,
    /// 503 SlowDown, not forwarded.
    SlowDown,
    /// The connection is reset after the request was read, before moto saw it.
    ResetBefore,
    /// Forwarded (moto did it), then the connection is reset instead of the answer: the
    /// ambiguous case of a write that happened but was never confirmed.
    ResetAfter,
    /// Forwarded (moto did it), then the connection is closed without an answer: the client
    /// may take the request for unsent and send it again (a conditional PUT then meets 412).
    CloseAfter,
    /// Forwarded, and answered after this many milliseconds.
    SlowMs(u64),
}

/// Which requests get which faults: each request of an op in `share` is faulted with that
/// probability, with one of `faults` picked at random (seeded, one random sequence per op, so
/// that sequential requests such as commits meet the same faults in every run); and the
/// `script`ed ones: the n-th request of an op (1-based, retries count) gets its fault.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub share: BTreeMap<Op, f64>,
    pub faults: Vec<Fault>,
    pub seed: u64,
    pub script: BTreeMap<(Op, u64), Fault>,
}

impl Plan {
    /// `share` of every S3 operation (PUT, conditional PUT, GET, HEAD, LIST, DELETE).
    pub fn every_op(share: f64, faults: &[Fault], seed: u64) -> Plan {
        use Op::*;
        Plan {
            share: [Put, CondPut, Get, Head, List, Delete]
                .into_iter()
                .map(|op| (op, share))
                .collect(),
            faults: faults.to_vec(),
            seed,
            script: BTreeMap::new(),
        }
    }

    /// The `n`-th request of `op` gets `fault` (instead of a random one).
    pub fn nth(mut self, op: Op, n: u64, fault: Fault) -> Plan {
        self.script.insert((op, n), fault);
        self
    }
}

/// What the proxy saw and did.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Requests by op (faulted or not).
    pub requests: BTreeMap<Op, u64>,
    /// Injected faults by (op, fault).
    pub faults: BTreeMap<(Op, Fault), u64>,
}

impl Stats {
    pub fn faults_of(&self, op: Op) -> u64 {
        self.faults
            .iter()
            .filter(|((o, _), _)| *o == op)
            .map(|(_, n)| n)
            .sum()
    }

    pub fn total_faults(&self) -> u64 {
        self.faults.values().sum()
    }
}

struct State {
    plan: Plan,
    /// One random sequence per op.
    rng: BTreeMap<Op, u64>,
    /// While set, every request (but `Other`) gets this fault.
    down: Option<Fault>,
    /// S3 goes down (with the fault) once this many requests of the op went through.
    down_after: Option<(Op, u64, Fault)>,
    stats: Stats,
}

impl State {
    /// The fault for a request of `op`, counted, or None.
    fn pick(&mut self, op: Op) -> Option<Fault> {
        *self.stats.requests.entry(op).or_default() += 1;
        if op == Op::Other {
            return None;
        }
        if let Some((o, n, f)) = self.down_after
            && o == op
            && self.stats.requests[&op] > n
        {
            self.down = Some(f);
            self.down_after = None;
        }
        let nth = self.stats.requests[&op];
        let fault = match (self.down, self.plan.script.get(&(op, nth))) {
            (Some(f), _) | (None, Some(&f)) => Some(f),
            (None, None) => {
                let share = self.plan.share.get(&op).copied().unwrap_or(0.0);
                if self.plan.faults.is_empty() || self.next_unit(op) >= share {
                    None
                } else {
                    let i = (self.next(op) % self.plan.faults.len() as u64) as usize;
                    Some(self.plan.faults[i])
                }
            }
        };
        if let Some(f) = fault {
            *self.stats.faults.entry((op, f)).or_default() += 1;
        }
        fault
    }

    /// xorshift64*: enough randomness for picking faults, and repeatable.
    fn next(&mut self, op: Op) -> u64 {
        let seed = self.plan.seed.max(1).wrapping_mul(op as u64 + 1);
        let mut x = *self.rng.entry(op).or_insert(seed);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng.insert(op, x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn next_unit(&mut self, op: Op) -> f64 {
        (self.next(op) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The proxy; dropping it stops it.
pub struct FaultProxy {
    pub endpoint: String,
    state: Arc<Mutex<State>>,
    _runtime: tokio::runtime::Runtime,
}

impl FaultProxy {
    /// A proxy on a random port of 127.0.0.1 in front of `moto`, faulting per `plan`.
    pub fn start(moto: &Moto, plan: Plan) -> FaultProxy {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("the proxy's runtime");
        let listener = runtime
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .expect("the proxy binds a port");
        let port = listener.local_addr().expect("the proxy's port").port();
        let state = Arc::new(Mutex::new(State {
            rng: BTreeMap::new(),
            plan,
            down: None,
            down_after: None,
            stats: Stats::default(),
        }));
        let (upstream, shared) = (moto.port, state.clone());
        runtime.spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let state = shared.clone();
                tokio::spawn(async move {
                    // A broken exchange is itself a fault the client sees; nothing to report.
                    let _ = serve(client, upstream, state).await;
                });
            }
        });
        FaultProxy {
            endpoint: format!("http://127.0.0.1:{port}"),
            state,
            _runtime: runtime,
        }
    }

    /// Replaces the plan (the random sequence goes on).
    pub fn set_plan(&self, plan: Plan) {
        self.lock().plan = plan;
    }

    /// S3 is down (every request gets `fault`) or, with None, back.
    pub fn set_down(&self, fault: Option<Fault>) {
        self.lock().down = fault;
    }

    /// S3 goes down (every request gets `fault`) from the request after the `n`-th of `op`.
    pub fn set_down_after(&self, op: Op, n: u64, fault: Fault) {
        self.lock().down_after = Some((op, n, fault));
    }

    pub fn stats(&self) -> Stats {
        self.lock().stats.clone()
    }

    /// moto's environment for a stocklake process, with the S3 endpoint pointing here.
    pub fn env(&self, moto: &Moto) -> Vec<(&'static str, String)> {
        let mut env = moto.env();
        env.push(("AWS_ENDPOINT_URL_S3", self.endpoint.clone()));
        env
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A request as read from the client: its head (request line and headers, without the blank
/// line) and its body bytes as sent (chunked bodies stay chunked).
struct Request {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn op(&self) -> Op {
        let (path, query) = self.target.split_once('?').unwrap_or((&self.target, ""));
        // Path-style requests: `/bucket` is the bucket, `/bucket/key` an object.
        let bucket_only = path.trim_matches('/').split('/').count() <= 1;
        match self.method.as_str() {
            "PUT"
                if self.header("if-none-match").is_some() || self.header("if-match").is_some() =>
            {
                Op::CondPut
            }
            "PUT" => Op::Put,
            "GET" if bucket_only || query.contains("list-type") => Op::List,
            "GET" => Op::Get,
            "HEAD" => Op::Head,
            "DELETE" => Op::Delete,
            "POST" if query.split('&').any(|q| q == "delete" || q == "delete=") => Op::Delete,
            _ => Op::Other,
        }
    }

    /// The request to send upstream, with `Connection: close`.
    fn bytes(&self) -> Vec<u8> {
        let mut out = format!("{} {} HTTP/1.1\r\n", self.method, self.target).into_bytes();
        for (k, v) in &self.headers {
            if !k.eq_ignore_ascii_case("connection") {
                out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
            }
        }
        out.extend_from_slice(b"Connection: close\r\n\r\n");
        out.extend_from_slice(&self.body);
        out
    }
}

type IoResult<T> = std::io::Result<T>;

fn bad(message: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message.to_string())
}

/// Reads one request (head and body) from the client; None at a clean end of the connection.
async fn read_request(r: &mut BufReader<TcpStream>) -> IoResult<Option<Request>> {
    let mut line = String::new();
    if r.read_line(&mut line).await? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let (method, target) = match (parts.next(), parts.next()) {
        (Some(m), Some(t)) => (m.to_string(), t.to_string()),
        _ => return Err(bad("no request line")),
    };
    let mut headers = Vec::new();
    loop {
        line.clear();
        r.read_line(&mut line).await?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let (k, v) = l.split_once(':').ok_or_else(|| bad("bad header"))?;
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    let mut request = Request {
        method,
        target,
        headers,
        body: Vec::new(),
    };
    if request
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        request.body = read_chunked(r).await?;
    } else if let Some(n) = request.header("content-length") {
        let n: usize = n.parse().map_err(|_| bad("bad content-length"))?;
        request.body = vec![0; n];
        r.read_exact(&mut request.body).await?;
    }
    Ok(Some(request))
}

/// A chunked body, as sent (size lines, chunks and the final empty chunk).
async fn read_chunked(r: &mut BufReader<TcpStream>) -> IoResult<Vec<u8>> {
    let mut out = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        r.read_line(&mut line).await?;
        out.extend_from_slice(line.as_bytes());
        let size = line.trim().split(';').next().unwrap_or("");
        let size = usize::from_str_radix(size, 16).map_err(|_| bad("bad chunk size"))?;
        if size == 0 {
            // Trailers, then the blank line.
            loop {
                line.clear();
                r.read_line(&mut line).await?;
                out.extend_from_slice(line.as_bytes());
                if line.trim().is_empty() {
                    return Ok(out);
                }
            }
        }
        let mut chunk = vec![0; size + 2];
        r.read_exact(&mut chunk).await?;
        out.extend_from_slice(&chunk);
    }
}

/// An S3 error answer with its XML body, closing the connection.
fn s3_error(status: u16, reason: &str, code: &str, message: &str, key: &str) -> Vec<u8> {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code>\
         <Message>{message}</Message><Resource>{key}</Resource>\
         <RequestId>FAULTPROXY</RequestId></Error>"
    );
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Sends `request` to moto and returns its whole answer with `Connection: close`.
async fn forward(request: &Request, upstream: u16) -> IoResult<Vec<u8>> {
    let mut up = TcpStream::connect(("127.0.0.1", upstream)).await?;
    up.write_all(&request.bytes()).await?;
    let mut answer = Vec::new();
    up.read_to_end(&mut answer).await?;
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("moto's answer has no head"))?;
    let head = String::from_utf8_lossy(&answer[..split]).into_owned();
    let mut out = Vec::with_capacity(answer.len() + 32);
    for line in head.split("\r\n") {
        let name = line.split(':').next().unwrap_or("").trim();
        if !name.eq_ignore_ascii_case("connection") && !name.eq_ignore_ascii_case("keep-alive") {
            out.extend_from_slice(line.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    out.extend_from_slice(&answer[split + 4..]);
    Ok(out)
}

/// Closes `stream` with a reset (RST) instead of an orderly end.
fn reset(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}

/// One client connection: one request, forwarded or faulted, then closed.
async fn serve(client: TcpStream, upstream: u16, state: Arc<Mutex<State>>) -> IoResult<()> {
    let mut reader = BufReader::new(client);
    let Some(request) = read_request(&mut reader).await? else {
        return Ok(());
    };
    let op = request.op();
    let fault = state.lock().unwrap_or_else(|e| e.into_inner()).pick(op);
    let mut client = reader.into_inner();
    let key = request.target.split('?').next().unwrap_or("").to_string();
    let answer = match fault {
        None => forward(&request, upstream).await?,
        Some(Fault::Internal) => s3_error(
            500,
            "Internal Server Error",
            "InternalError",
            "We encountered an internal error. Please try again.",
            &key,
        ),
        Some(Fault::SlowDown) => s3_error(
            503,
            "Slow Down",
            "SlowDown",
            "Please reduce your request rate.",
            &key,
        ),
        Some(Fault::ResetBefore) => {
            reset(client);
            return Ok(());
        }
        Some(Fault::ResetAfter) => {
            forward(&request, upstream).await?;
            reset(client);
            return Ok(());
        }
        Some(Fault::CloseAfter) => {
            forward(&request, upstream).await?;
            return client.shutdown().await;
        }
        Some(Fault::SlowMs(ms)) => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            forward(&request, upstream).await?
        }
    };
    client.write_all(&answer).await?;
    client.shutdown().await
}
