//! Gitea's pull requests in the repository API fake: listed (paged, open
//! ones), created (409 when one is open for the same head and base, as
//! Gitea answers), edited, labelled by id, reviewers requested, and the
//! merge endpoint's `merge_when_checks_succeed` scheduled (201).

use serde_json::{json, Value};

use super::State;

pub fn handle(
    method: &str,
    rest: &str,
    param: &dyn Fn(&str) -> Option<String>,
    body: &Value,
    s: &mut State,
) -> (u16, Value) {
    let number =
        |r: &str| -> Option<usize> { r.split('/').nth(1).and_then(|n| n.parse::<usize>().ok()) };
    match (method, rest) {
        ("GET", "pulls") => {
            let limit: usize = param("limit").and_then(|p| p.parse().ok()).unwrap_or(30);
            let page: usize = param("page").and_then(|p| p.parse().ok()).unwrap_or(1);
            let open: Vec<Value> = s
                .pulls
                .iter()
                .filter(|p| p["state"] == "open")
                .skip((page - 1) * limit)
                .take(limit)
                .cloned()
                .collect();
            (200, Value::Array(open))
        }
        ("POST", "pulls") => {
            let (head, base) = (&body["head"], &body["base"]);
            if let Some(open) = s.pulls.iter().find(|p| {
                p["state"] == "open"
                    && p["head"]["ref"] == *head
                    && p["head"]["repo_id"] == 1
                    && p["base"]["ref"] == *base
            }) {
                return (
                    409,
                    json!({"message": format!(
                    "pull request already exists for these targets [id: {}, issue_id: {}, head_repo_id: 1, base_repo_id: 1, head_branch: {}, base_branch: {}]",
                    open["id"], open["number"], head.as_str().unwrap_or(""), base.as_str().unwrap_or(""))}),
                );
            }
            let n = s.pulls.len() + 1;
            let ids: Vec<i64> = body["labels"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_i64).collect())
                .unwrap_or_default();
            let pr = json!({
                "id": 100 + n, "number": n, "state": "open",
                "html_url": format!("https://gitea.example.com/acme/deploy/pulls/{n}"),
                "title": body["title"], "body": body["body"],
                "head": {"ref": head, "repo_id": 1}, "base": {"ref": base, "repo_id": 1},
                "labels": labels_of(&ids),
                "assignees": logins(&body["assignees"]),
                "requested_reviewers": null,
            });
            s.pulls.push(pr.clone());
            (201, pr)
        }
        ("PATCH", r) if r.starts_with("pulls/") => {
            let Some(pr) = number(r).and_then(|n| s.pulls.get_mut(n - 1)) else {
                return (404, json!({"message": "The target couldn't be found."}));
            };
            for key in ["title", "body"] {
                if !body[key].is_null() {
                    pr[key] = body[key].clone();
                }
            }
            if !body["assignees"].is_null() {
                pr["assignees"] = logins(&body["assignees"]);
            }
            (201, pr.clone())
        }
        ("POST", r) if r.starts_with("issues/") && r.ends_with("/labels") => {
            let Some(pr) = number(r).and_then(|n| s.pulls.get_mut(n - 1)) else {
                return (404, json!({"message": "The target couldn't be found."}));
            };
            let mut ids: Vec<i64> = pr["labels"]
                .as_array()
                .map(|a| a.iter().filter_map(|l| l["id"].as_i64()).collect())
                .unwrap_or_default();
            ids.extend(
                body["labels"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_i64),
            );
            pr["labels"] = labels_of(&ids);
            (200, pr["labels"].clone())
        }
        ("POST", r) if r.ends_with("/requested_reviewers") => {
            let Some(pr) = number(r).and_then(|n| s.pulls.get_mut(n - 1)) else {
                return (404, json!({"message": "The target couldn't be found."}));
            };
            let mut asked = pr["requested_reviewers"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            asked.extend(
                logins(&body["reviewers"])
                    .as_array()
                    .cloned()
                    .unwrap_or_default(),
            );
            pr["requested_reviewers"] = Value::Array(asked);
            (201, json!([]))
        }
        ("POST", r) if r.ends_with("/merge") => {
            let Some(pr) = number(r).and_then(|n| s.pulls.get_mut(n - 1)) else {
                return (404, json!({"message": "The target couldn't be found."}));
            };
            if body["Do"].as_str().is_none() {
                return (422, json!({"message": "[Do]: Required"}));
            }
            pr["auto_merge"] = body.clone();
            (201, Value::Null)
        }
        _ => (404, json!({"message": "The target couldn't be found."})),
    }
}

fn labels_of(ids: &[i64]) -> Value {
    let all = super::gitea::labels();
    let mut seen = Vec::new();
    Value::Array(
        all.as_array()
            .unwrap()
            .iter()
            .filter(|l| {
                let id = l["id"].as_i64().unwrap_or(0);
                ids.contains(&id) && !seen.contains(&id) && {
                    seen.push(id);
                    true
                }
            })
            .cloned()
            .collect(),
    )
}

fn logins(names: &Value) -> Value {
    Value::Array(
        names
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(|n| json!({"login": n}))
            .collect(),
    )
}
