//! RBAC: roles read from configurable claim paths, mapped to permissions,
//! with role inheritance resolved (and cycles refused) at configure time.

use std::collections::BTreeMap;

use meshward_shared::config::ConfigError;
use serde::Deserialize;

use crate::request::{dotted, Needs};

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawRbac {
    /// Dotted claim paths holding role names, e.g. `realm_access.roles`.
    #[serde(default)]
    pub role_claims: Vec<String>,
    #[serde(default)]
    pub roles: BTreeMap<String, RawRole>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawRole {
    #[serde(default)]
    pub permissions: Vec<String>,
    #[serde(default)]
    pub inherits: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Rbac {
    /// Claim slots read for role names.
    pub role_claims: Vec<usize>,
    /// Sorted role names; the index is the role index.
    pub role_names: Vec<String>,
    /// Sorted permission names; the index is the permission index.
    pub permission_names: Vec<String>,
    /// Per role: every role it implies (itself and inherited roles).
    pub implied: Vec<Vec<usize>>,
    /// Per role: every permission it grants, inherited ones included.
    pub grants: Vec<Vec<usize>>,
}

impl Rbac {
    pub fn compile(raw: &RawRbac, needs: &mut Needs) -> Result<Rbac, ConfigError> {
        let mut rbac = Rbac {
            role_names: raw.roles.keys().cloned().collect(),
            ..Default::default()
        };
        let mut perms: Vec<String> = raw
            .roles
            .values()
            .flat_map(|r| r.permissions.iter().cloned())
            .collect();
        perms.sort();
        perms.dedup();
        rbac.permission_names = perms;
        for (i, c) in raw.role_claims.iter().enumerate() {
            let path = dotted(c).map_err(|m| ConfigError::new(format!("role_claims[{i}]"), m))?;
            rbac.role_claims.push(needs.dotted_claim_slot(path));
        }
        for (name, role) in &raw.roles {
            if name.is_empty() {
                return Err(ConfigError::new("roles", "empty role name"));
            }
            for (j, parent) in role.inherits.iter().enumerate() {
                if rbac.role(parent).is_none() {
                    return Err(ConfigError::new(
                        format!("roles.{name}.inherits[{j}]"),
                        format!("unknown role `{parent}`"),
                    ));
                }
            }
            for (j, p) in role.permissions.iter().enumerate() {
                if p.is_empty() {
                    return Err(ConfigError::new(
                        format!("roles.{name}.permissions[{j}]"),
                        "empty permission",
                    ));
                }
            }
        }
        // Inheritance closure by depth-first search; a cycle is a config error.
        let parents: Vec<Vec<usize>> = raw
            .roles
            .values()
            .map(|r| r.inherits.iter().filter_map(|p| rbac.role(p)).collect())
            .collect();
        for start in 0..rbac.role_names.len() {
            let mut seen = vec![false; rbac.role_names.len()];
            let mut stack = vec![(start, 0usize)];
            let mut path = vec![start];
            seen[start] = true;
            let mut implied = vec![start];
            while let Some((node, next)) = stack.pop() {
                let Some(&child) = parents.get(node).and_then(|p| p.get(next)) else {
                    path.pop();
                    continue;
                };
                stack.push((node, next + 1));
                if path.contains(&child) {
                    let name = rbac.role_names.get(start).cloned().unwrap_or_default();
                    return Err(ConfigError::new(
                        format!("roles.{name}.inherits"),
                        "inheritance cycle",
                    ));
                }
                if !seen[child] {
                    seen[child] = true;
                    implied.push(child);
                    path.push(child);
                    stack.push((child, 0));
                }
            }
            implied.sort_unstable();
            rbac.implied.push(implied);
        }
        let own: Vec<Vec<usize>> = raw
            .roles
            .values()
            .map(|r| {
                r.permissions
                    .iter()
                    .filter_map(|p| rbac.permission(p))
                    .collect()
            })
            .collect();
        for implied in &rbac.implied {
            let mut g: Vec<usize> = implied
                .iter()
                .flat_map(|r| own.get(*r).cloned().unwrap_or_default())
                .collect();
            g.sort_unstable();
            g.dedup();
            rbac.grants.push(g);
        }
        if !rbac.role_names.is_empty() && rbac.role_claims.is_empty() {
            return Err(ConfigError::new(
                "role_claims",
                "roles are defined but no claim path says where to read them",
            ));
        }
        if !rbac.role_claims.is_empty() {
            needs.roles = true;
        }
        Ok(rbac)
    }

    pub fn role(&self, name: &str) -> Option<usize> {
        self.role_names
            .binary_search_by(|n| n.as_str().cmp(name))
            .ok()
    }

    pub fn permission(&self, name: &str) -> Option<usize> {
        self.permission_names
            .binary_search_by(|n| n.as_str().cmp(name))
            .ok()
    }

    /// Effective roles and permissions from the role claim values.
    pub fn resolve(&self, claims: &[Vec<String>]) -> (Vec<bool>, Vec<bool>) {
        let mut roles = vec![false; self.role_names.len()];
        let mut perms = vec![false; self.permission_names.len()];
        for slot in &self.role_claims {
            for name in claims.get(*slot).into_iter().flatten() {
                let Some(r) = self.role(name) else { continue };
                for i in self.implied.get(r).into_iter().flatten() {
                    if let Some(x) = roles.get_mut(*i) {
                        *x = true;
                    }
                }
                for p in self.grants.get(r).into_iter().flatten() {
                    if let Some(x) = perms.get_mut(*p) {
                        *x = true;
                    }
                }
            }
        }
        (roles, perms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile(json: &str) -> Result<(Rbac, Needs), ConfigError> {
        let raw: RawRbac = serde_json::from_str(json).unwrap();
        let mut needs = Needs::default();
        Rbac::compile(&raw, &mut needs).map(|r| (r, needs))
    }

    #[test]
    fn inheritance_grants_parent_permissions() {
        let (r, needs) = compile(
            r#"{"role_claims":["roles","realm_access.roles"],
                "roles":{"viewer":{"permissions":["orders:read"]},
                         "editor":{"permissions":["orders:write"],"inherits":["viewer"]},
                         "admin":{"permissions":["users:manage"],"inherits":["editor"]}}}"#,
        )
        .unwrap();
        let paths: Vec<_> = needs
            .claims
            .iter()
            .map(|c| (c.path.clone(), c.dotted_keys))
            .collect();
        assert_eq!(
            paths,
            vec![
                (vec!["roles".to_string()], true),
                (vec!["realm_access".into(), "roles".into()], true)
            ]
        );
        assert!(needs.roles && needs.auth);
        let claims = vec![vec![], vec!["admin".to_string(), "nobody".into()]];
        let (roles, perms) = r.resolve(&claims);
        assert!(roles.iter().all(|x| *x), "admin implies editor and viewer");
        assert!(perms.iter().all(|x| *x));
        let (roles, perms) = r.resolve(&[vec!["viewer".to_string()], vec![]]);
        assert_eq!(roles, vec![false, false, true]); // admin, editor, viewer (sorted)
        assert!(perms[r.permission("orders:read").unwrap()]);
        assert!(!perms[r.permission("orders:write").unwrap()]);
    }

    #[test]
    fn cycles_unknown_parents_and_missing_claims_refused() {
        let e = compile(
            r#"{"role_claims":["roles"],"roles":{"a":{"inherits":["b"]},"b":{"inherits":["a"]}}}"#,
        )
        .unwrap_err();
        assert!(e.message.contains("cycle"), "{e}");
        let e = compile(r#"{"role_claims":["roles"],"roles":{"a":{"inherits":["ghost"]}}}"#)
            .unwrap_err();
        assert_eq!(e.path, "roles.a.inherits[0]");
        let e = compile(r#"{"roles":{"a":{}}}"#).unwrap_err();
        assert_eq!(e.path, "role_claims");
        let e = compile(r#"{"role_claims":["a..b"]}"#).unwrap_err();
        assert_eq!(e.path, "role_claims[0]");
        let e = compile(r#"{"role_claims":["r"],"roles":{"a":{"inherits":["a"]}}}"#).unwrap_err();
        assert!(e.message.contains("cycle"));
    }
}
