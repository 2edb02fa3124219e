//! A small stateful fake of GitLab's and GitHub's merge/pull request APIs, for
//! behaviour a stateless contract mock cannot show: the second run finds the
//! first run's MR and updates it. Request *shapes* are checked against the
//! vendors' OpenAPI descriptions separately (see `contracts.rs`).
//!
//! Blocking HTTP/1.1 on 127.0.0.1, one thread per connection; every request
//! is recorded for assertions.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Default)]
pub struct State {
    pub requests: Vec<Request>,
    /// Open MRs / PRs, as the API returns them.
    pub items: Vec<Value>,
    /// Statuses to answer with before serving normally (e.g. 429, 502).
    pub fail_next: Vec<u16>,
    /// GitHub GraphQL: answer enablePullRequestAutoMerge with this error.
    pub auto_merge_error: Option<String>,
    /// GitLab's /version.
    pub version: String,
}

pub struct FakeForge {
    pub url: String,
    pub state: Arc<Mutex<State>>,
}

impl FakeForge {
    pub fn start(token: &str) -> FakeForge {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let state = Arc::new(Mutex::new(State {
            version: "17.11.2-ee".into(),
            ..State::default()
        }));
        let (shared, token_owned, base) = (state.clone(), token.to_string(), url.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (state, token, base) = (shared.clone(), token_owned.clone(), base.clone());
                std::thread::spawn(move || serve(stream, &state, &token, &base));
            }
        });
        FakeForge { url, state }
    }

    pub fn requests(&self) -> Vec<Request> {
        self.state.lock().unwrap().requests.clone()
    }

    pub fn items(&self) -> Vec<Value> {
        self.state.lock().unwrap().items.clone()
    }
}

fn serve(stream: TcpStream, state: &Mutex<State>, token: &str, base: &str) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut writer = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (method, target) = (
            parts.next().unwrap_or("").to_string(),
            parts.next().unwrap_or("").to_string(),
        );
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                break;
            }
            if let Some((k, v)) = h.trim_end().split_once(':') {
                headers.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
        let length: usize = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let request = Request {
            method,
            path: path.to_string(),
            query: query.to_string(),
            headers,
            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        };
        let (status, extra, reply) = handle(&request, state, token, base);
        let text = reply.to_string();
        let response = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{extra}\r\n{text}",
            text.len()
        );
        if writer.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

fn param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == name).then(|| v.replace("%2F", "/").replace("%3A", ":"))
    })
}

pub fn handle(r: &Request, state: &Mutex<State>, token: &str, base: &str) -> (u16, String, Value) {
    let mut s = state.lock().unwrap();
    s.requests.push(r.clone());
    if !s.fail_next.is_empty() {
        let status = s.fail_next.remove(0);
        let extra = if status == 429 {
            "Retry-After: 1\r\n".to_string()
        } else {
            String::new()
        };
        return (status, extra, json!({"message": "slow down"}));
    }
    let authorized = r.header("private-token") == Some(token)
        || r.header("job-token") == Some(token)
        || r.header("authorization")
            .is_some_and(|a| a.ends_with(token));
    if !authorized {
        return (401, String::new(), json!({"message": "401 Unauthorized"}));
    }
    let segs: Vec<&str> = r.path.trim_matches('/').split('/').collect();
    let none = String::new();
    match (r.method.as_str(), segs.as_slice()) {
        // ---- GitLab ----
        ("GET", ["api", "v4", "version"]) => (200, none, json!({"version": s.version})),
        ("GET", ["api", "v4", "users"]) => {
            let name = param(&r.query, "username").unwrap_or_default();
            let id = name.bytes().map(u64::from).sum::<u64>();
            (200, none, json!([{ "id": id, "username": name }]))
        }
        ("GET", ["api", "v4", "projects", _, "merge_requests"]) => {
            let (src, tgt) = (
                param(&r.query, "source_branch"),
                param(&r.query, "target_branch"),
            );
            let items: Vec<Value> = s
                .items
                .iter()
                .filter(|m| m["state"] == "opened")
                .filter(|m| src.as_deref().is_none_or(|b| m["source_branch"] == b))
                .filter(|m| tgt.as_deref().is_none_or(|b| m["target_branch"] == b))
                .cloned()
                .collect();
            (200, none, Value::Array(items))
        }
        ("POST", ["api", "v4", "projects", project, "merge_requests"]) => {
            let b = &r.body;
            if s.items
                .iter()
                .any(|m| m["state"] == "opened" && m["source_branch"] == b["source_branch"])
            {
                return (
                    409,
                    none,
                    json!({"message": ["Another open merge request already exists for this source branch"]}),
                );
            }
            let iid = s.items.len() as u64 + 1;
            let project = project.replace("%2F", "/");
            let users = |key: &str| -> Value {
                Value::Array(
                    b[key]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                        .into_iter()
                        .map(|id| json!({"id": id}))
                        .collect(),
                )
            };
            let mr = json!({
                "iid": iid, "id": 1000 + iid, "state": "opened",
                "title": b["title"], "description": b["description"],
                "source_branch": b["source_branch"], "target_branch": b["target_branch"],
                "labels": b["labels"].as_array().cloned().unwrap_or_default(),
                "assignees": users("assignee_ids"), "reviewers": users("reviewer_ids"),
                "web_url": format!("{base}/{project}/-/merge_requests/{iid}"),
                "head_pipeline": {"id": 7}, "auto_merge": false,
            });
            s.items.push(mr.clone());
            (201, none, mr)
        }
        ("GET", ["api", "v4", "projects", _, "merge_requests", iid]) => {
            match find(&s.items, "iid", iid) {
                Some(i) => (200, none, s.items[i].clone()),
                None => (404, none, json!({"message": "404 Not found"})),
            }
        }
        ("PUT", ["api", "v4", "projects", _, "merge_requests", iid]) => {
            match find(&s.items, "iid", iid) {
                Some(i) => {
                    let body = r.body.as_object().cloned().unwrap_or_default();
                    for (k, v) in body {
                        let key = match k.as_str() {
                            "assignee_ids" => "assignees",
                            "reviewer_ids" => "reviewers",
                            other => other,
                        }
                        .to_string();
                        let v = if key == "assignees" || key == "reviewers" {
                            Value::Array(
                                v.as_array()
                                    .cloned()
                                    .unwrap_or_default()
                                    .into_iter()
                                    .map(|id| json!({"id": id}))
                                    .collect(),
                            )
                        } else {
                            v
                        };
                        s.items[i][key] = v;
                    }
                    (200, none, s.items[i].clone())
                }
                None => (404, none, json!({"message": "404 Not found"})),
            }
        }
        ("PUT", ["api", "v4", "projects", _, "merge_requests", iid, "merge"]) => {
            match find(&s.items, "iid", iid) {
                Some(i) => {
                    s.items[i]["auto_merge"] = json!(true);
                    (200, none, s.items[i].clone())
                }
                None => (404, none, json!({"message": "404 Not found"})),
            }
        }
        // ---- GitHub ----
        ("GET", ["repos", owner, _repo, "pulls"]) => {
            let head = param(&r.query, "head").unwrap_or_default();
            let items: Vec<Value> = s
                .items
                .iter()
                .filter(|p| {
                    p["state"] == "open"
                        && format!("{owner}:{}", p["head"]["ref"].as_str().unwrap_or("")) == head
                })
                .cloned()
                .collect();
            (200, none, Value::Array(items))
        }
        ("POST", ["repos", owner, repo, "pulls"]) => {
            let b = &r.body;
            if s.items
                .iter()
                .any(|p| p["state"] == "open" && p["head"]["ref"] == b["head"])
            {
                return (
                    422,
                    none,
                    json!({"message": "Validation Failed", "errors": [{"message": "A pull request already exists"}]}),
                );
            }
            let number = s.items.len() as u64 + 1;
            let pr = json!({
                "number": number, "node_id": format!("PR_{number}"), "state": "open",
                "title": b["title"], "body": b["body"], "draft": b["draft"],
                "head": {"ref": b["head"]}, "base": {"ref": b["base"]},
                "labels": [], "assignees": [], "requested_reviewers": [],
                "html_url": format!("{base}/{owner}/{repo}/pull/{number}"),
            });
            s.items.push(pr.clone());
            (201, none, pr)
        }
        ("PATCH", ["repos", _, _, "pulls", n]) => match find(&s.items, "number", n) {
            Some(i) => {
                for (k, v) in r.body.as_object().cloned().unwrap_or_default() {
                    s.items[i][k] = v;
                }
                (200, none, s.items[i].clone())
            }
            None => (404, none, json!({"message": "Not Found"})),
        },
        ("POST", ["repos", _, _, "issues", n, "labels"]) => match find(&s.items, "number", n) {
            Some(i) => {
                let mut labels = s.items[i]["labels"].as_array().cloned().unwrap_or_default();
                for l in r.body["labels"].as_array().cloned().unwrap_or_default() {
                    labels.push(json!({"name": l}));
                }
                s.items[i]["labels"] = Value::Array(labels.clone());
                (200, none, Value::Array(labels))
            }
            None => (404, none, json!({"message": "Not Found"})),
        },
        ("POST", ["repos", _, _, "pulls", n, "requested_reviewers"]) => {
            match find(&s.items, "number", n) {
                Some(i) => {
                    let users: Vec<Value> = r.body["reviewers"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                        .into_iter()
                        .map(|u| json!({"login": u}))
                        .collect();
                    s.items[i]["requested_reviewers"] = Value::Array(users);
                    (201, none, s.items[i].clone())
                }
                None => (404, none, json!({"message": "Not Found"})),
            }
        }
        ("POST", ["graphql"]) => match s.auto_merge_error.clone() {
            Some(message) => (
                200,
                none,
                json!({"data": null, "errors": [{"message": message}]}),
            ),
            None => {
                let id = r.body["variables"]["id"].as_str().unwrap_or("").to_string();
                if let Some(p) = s.items.iter_mut().find(|p| p["node_id"] == id.as_str()) {
                    p["auto_merge"] = json!(r.body["variables"]["method"]);
                }
                (
                    200,
                    none,
                    json!({"data": {"enablePullRequestAutoMerge": {"pullRequest": {"number": 1}}}}),
                )
            }
        },
        _ => (
            404,
            none,
            json!({"message": format!("fake forge: no route for {} {}", r.method, r.path)}),
        ),
    }
}

fn find(items: &[Value], key: &str, value: &str) -> Option<usize> {
    let n: u64 = value.parse().ok()?;
    items.iter().position(|i| i[key].as_u64() == Some(n))
}
