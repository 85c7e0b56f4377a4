//! [`OptionSet`]: a connector's declared options, validation into a [`ValidatedConfig`], and
//! Markdown documentation.

use std::any::Any;
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use super::error::{ConfigError, ConfigErrors, ConfigWarning};
use super::option::{ConfigOption, MASK};
use super::value::OptionValue;

/// A check across several options of a validated configuration.
pub type CrossValidator = Arc<dyn Fn(&ValidatedConfig) -> Vec<ConfigError> + Send + Sync>;

/// A parsed option value, type-erased.
#[derive(Clone)]
struct StoredValue {
    value: Arc<dyn Any + Send + Sync>,
    rendered: String,
    sensitive: bool,
}

/// A [`ConfigOption`] with its value type erased, so one set can hold options of many types.
trait ErasedOption: Send + Sync {
    fn erased_key(&self) -> &str;
    fn erased_deprecated_keys(&self) -> Vec<&str>;
    fn erased_doc(&self) -> &str;
    fn erased_type_name(&self) -> Cow<'static, str>;
    fn erased_allowed_values(&self) -> Option<Vec<&'static str>>;
    fn erased_default(&self) -> Option<String>;
    fn erased_required(&self) -> bool;
    fn erased_parse(&self, used_key: &str, raw: &str) -> Result<StoredValue, ConfigError>;
}

impl<T: OptionValue> ErasedOption for ConfigOption<T> {
    fn erased_key(&self) -> &str {
        self.key()
    }
    fn erased_deprecated_keys(&self) -> Vec<&str> {
        self.deprecated_keys().collect()
    }
    fn erased_doc(&self) -> &str {
        self.doc()
    }
    fn erased_type_name(&self) -> Cow<'static, str> {
        T::type_name()
    }
    fn erased_allowed_values(&self) -> Option<Vec<&'static str>> {
        T::allowed_values()
    }
    fn erased_default(&self) -> Option<String> {
        self.default().map(OptionValue::render_value)
    }
    fn erased_required(&self) -> bool {
        self.is_required()
    }
    fn erased_parse(&self, used_key: &str, raw: &str) -> Result<StoredValue, ConfigError> {
        let value = self.parse_as(used_key, raw)?;
        Ok(StoredValue {
            rendered: value.render_value(),
            value: Arc::new(value),
            sensitive: self.is_sensitive(),
        })
    }
}

#[derive(Clone, Debug)]
struct Prefix {
    prefix: Cow<'static, str>,
    description: Cow<'static, str>,
}

/// A named set of options (e.g. "kafka source") with passthrough prefixes and cross-option
/// validators. Validates user input and renders the documentation table.
///
/// Declaring a second option with an existing key replaces the first one in place.
#[derive(Clone)]
pub struct OptionSet {
    name: Cow<'static, str>,
    options: Vec<Arc<dyn ErasedOption>>,
    prefixes: Vec<Prefix>,
    cross_validators: Vec<CrossValidator>,
}

impl OptionSet {
    /// An empty set named `name`, used in error headers such as "2 problems in `name` options:".
    pub fn new(name: impl Into<Cow<'static, str>>) -> Self {
        OptionSet {
            name: name.into(),
            options: Vec::new(),
            prefixes: Vec::new(),
            cross_validators: Vec::new(),
        }
    }

    /// Declares `option` (cloned). Declaration order is documentation order.
    pub fn option<T: OptionValue>(mut self, option: &ConfigOption<T>) -> Self {
        let erased: Arc<dyn ErasedOption> = Arc::new(option.clone());
        match self
            .options
            .iter()
            .position(|existing| existing.erased_key() == option.key())
        {
            Some(index) => self.options[index] = erased,
            None => self.options.push(erased),
        }
        self
    }

    /// Accepts every key starting with `prefix` (e.g. `properties.`); read them with
    /// [`ValidatedConfig::prefixed`], prefix stripped. A key matching several prefixes belongs
    /// to the longest. A declared option whose key starts with a prefix is validated as an
    /// option and also appears in that prefix's map.
    pub fn prefix(
        mut self,
        prefix: impl Into<Cow<'static, str>>,
        description: impl Into<Cow<'static, str>>,
    ) -> Self {
        self.prefixes.push(Prefix {
            prefix: prefix.into(),
            description: description.into(),
        });
        self
    }

    /// Adds a check across options, run after every option is parsed. Errors about keys that
    /// already failed on their own are dropped, so one mistake is reported once. Read the
    /// options with [`ValidatedConfig::get`] and [`ValidatedConfig::is_set`].
    pub fn cross_validator<F>(mut self, validator: F) -> Self
    where
        F: Fn(&ValidatedConfig) -> Vec<ConfigError> + Send + Sync + 'static,
    {
        self.cross_validators.push(Arc::new(validator));
        self
    }

    /// The set's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The declared option keys, in declaration order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.options.iter().map(|option| option.erased_key())
    }

    /// The declared prefixes, in declaration order.
    pub fn prefixes(&self) -> impl Iterator<Item = &str> {
        self.prefixes.iter().map(|prefix| &*prefix.prefix)
    }

    /// Index of the option with this key or deprecated key; current keys win over deprecated ones.
    fn lookup(&self, key: &str) -> Option<usize> {
        self.options
            .iter()
            .position(|option| option.erased_key() == key)
            .or_else(|| {
                self.options
                    .iter()
                    .position(|option| option.erased_deprecated_keys().contains(&key))
            })
    }

    fn matching_prefix(&self, key: &str) -> Option<&str> {
        self.prefixes
            .iter()
            .map(|prefix| &*prefix.prefix)
            .filter(|prefix| key.starts_with(prefix))
            .max_by_key(|prefix| prefix.len())
    }

    /// The closest known key to an unknown `key`: a current key, the current key of a close
    /// deprecated key, or `key` with its leading segments replaced by a close prefix.
    fn suggest(&self, key: &str) -> Option<String> {
        let wanted = key.to_lowercase();
        let mut best: Option<(usize, String)> = None;
        let mut consider = |candidate: &str, suggestion: &str| {
            let candidate = candidate.to_lowercase();
            let distance = strsim::damerau_levenshtein(&wanted, &candidate);
            let limit = (wanted.chars().count().max(candidate.chars().count()) / 3).max(1);
            let better = match &best {
                Some((best_distance, _)) => distance < *best_distance,
                None => true,
            };
            if distance <= limit && better {
                best = Some((distance, suggestion.to_owned()));
            }
        };
        for option in &self.options {
            consider(option.erased_key(), option.erased_key());
            for deprecated in option.erased_deprecated_keys() {
                consider(deprecated, option.erased_key());
            }
        }
        for prefix in self.prefixes() {
            for (dot, _) in key.match_indices('.') {
                let rest = &key[dot + 1..];
                if !rest.is_empty() {
                    let candidate = format!("{prefix}{rest}");
                    consider(&candidate, &candidate);
                }
            }
        }
        best.map(|(_, suggestion)| suggestion)
    }

    /// Validates user options, reporting every problem at once (sorted by key): unknown keys
    /// (with a suggestion when one is close), missing required options, unparsable values,
    /// validator failures, options given twice through deprecated names, and cross-option
    /// errors. Deprecated names are accepted with a warning.
    pub fn validate(
        &self,
        input: &BTreeMap<String, String>,
    ) -> Result<ValidatedConfig, ConfigErrors> {
        let mut errors = Vec::new();
        let mut warnings = Vec::new();
        let mut given: Vec<Vec<(&str, &str)>> = vec![Vec::new(); self.options.len()];
        let mut prefixed: BTreeMap<String, BTreeMap<String, String>> = self
            .prefixes()
            .map(|prefix| (prefix.to_owned(), BTreeMap::new()))
            .collect();

        for (key, value) in input {
            if let Some(index) = self.lookup(key) {
                if let Some(entries) = given.get_mut(index) {
                    entries.push((key, value));
                }
            } else if let Some(prefix) = self.matching_prefix(key) {
                let rest = &key[prefix.len()..];
                if rest.is_empty() {
                    errors.push(ConfigError::Rejected {
                        key: key.clone(),
                        value: value.clone(),
                        reason: format!("name a property after the prefix, e.g. `{prefix}<name>`"),
                    });
                } else {
                    prefixed
                        .entry(prefix.to_owned())
                        .or_default()
                        .insert(rest.to_owned(), value.clone());
                }
            } else {
                errors.push(ConfigError::UnknownKey {
                    key: key.clone(),
                    suggestion: self.suggest(key),
                });
            }
        }

        let mut failed: BTreeSet<String> = BTreeSet::new();
        let mut values = BTreeMap::new();
        for (option, entries) in self.options.iter().zip(&given) {
            let key = option.erased_key();
            let primary = entries
                .iter()
                .position(|(used, _)| *used == key)
                .unwrap_or(0);
            let Some(&(used, raw)) = entries.get(primary) else {
                if option.erased_required() {
                    errors.push(ConfigError::Missing {
                        key: key.to_owned(),
                    });
                    failed.insert(key.to_owned());
                }
                continue;
            };
            for (index, (other, _)) in entries.iter().enumerate() {
                if index != primary {
                    errors.push(ConfigError::DuplicateAlias {
                        key: key.to_owned(),
                        alias: (*other).to_owned(),
                    });
                    failed.insert(key.to_owned());
                }
            }
            if used != key {
                warnings.push(ConfigWarning::DeprecatedKey {
                    key: used.to_owned(),
                    replacement: key.to_owned(),
                });
            }
            match option.erased_parse(used, raw) {
                Ok(stored) => {
                    if let Some(prefix) = self.matching_prefix(key) {
                        let rest = &key[prefix.len()..];
                        if !rest.is_empty() {
                            prefixed
                                .entry(prefix.to_owned())
                                .or_default()
                                .insert(rest.to_owned(), raw.to_owned());
                        }
                    }
                    values.insert(key.to_owned(), stored);
                }
                Err(error) => {
                    errors.push(error);
                    failed.insert(key.to_owned());
                    failed.insert(used.to_owned());
                }
            }
        }

        let config = ValidatedConfig {
            set_name: self.name.to_string(),
            values,
            prefixed,
            warnings,
        };
        for validator in &self.cross_validators {
            errors.extend(
                validator(&config)
                    .into_iter()
                    .filter(|error| !error.keys().iter().any(|key| failed.contains(*key))),
            );
        }

        if errors.is_empty() {
            Ok(config)
        } else {
            Err(ConfigErrors::new(self.name.to_string(), errors))
        }
    }

    /// Renders the documentation table `| Key | Type | Default | Required | Description |`:
    /// options in declaration order (with enum values and deprecated keys in the description),
    /// then prefixes as `prefix*` rows.
    pub fn to_markdown(&self) -> String {
        let mut rows = vec![
            "| Key | Type | Default | Required | Description |".to_owned(),
            "|---|---|---|---|---|".to_owned(),
        ];
        for option in &self.options {
            let mut description = vec![escape_cell(option.erased_doc())];
            if let Some(values) = option.erased_allowed_values() {
                description.push(format!("Possible values: {}.", code_list(&values)));
            }
            let deprecated = option.erased_deprecated_keys();
            if !deprecated.is_empty() {
                description.push(format!("Deprecated keys: {}.", code_list(&deprecated)));
            }
            let default = match option.erased_default() {
                Some(default) if default.is_empty() => "(empty)".to_owned(),
                Some(default) => format!("`{}`", escape_cell(&default)),
                None => "(none)".to_owned(),
            };
            let required = if option.erased_required() {
                "yes"
            } else {
                "no"
            };
            rows.push(format!(
                "| `{}` | {} | {default} | {required} | {} |",
                option.erased_key(),
                option.erased_type_name(),
                join_nonempty(&description),
            ));
        }
        for prefix in &self.prefixes {
            let description = [
                escape_cell(&prefix.description),
                format!(
                    "Every key starting with `{}` is passed through with the prefix removed.",
                    prefix.prefix
                ),
            ];
            rows.push(format!(
                "| `{}*` | String | (none) | no | {} |",
                prefix.prefix,
                join_nonempty(&description),
            ));
        }
        rows.push(String::new());
        rows.join("\n")
    }
}

fn escape_cell(text: &str) -> String {
    text.trim()
        .replace('|', "\\|")
        .replace("\r\n", "<br>")
        .replace('\n', "<br>")
}

fn code_list(items: &[&str]) -> String {
    items
        .iter()
        .map(|item| format!("`{item}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn join_nonempty(parts: &[String]) -> String {
    parts
        .iter()
        .filter(|part| !part.is_empty())
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(" ")
}

impl fmt::Debug for OptionSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OptionSet")
            .field("name", &self.name)
            .field("keys", &self.keys().collect::<Vec<_>>())
            .field("prefixes", &self.prefixes().collect::<Vec<_>>())
            .field("cross_validators", &self.cross_validators.len())
            .finish_non_exhaustive()
    }
}

static NO_PROPERTIES: BTreeMap<String, String> = BTreeMap::new();

/// Options that passed [`OptionSet::validate`]: typed values, prefixed passthrough
/// properties and warnings.
///
/// Reading never panics. [`get`](Self::get) returns the given value, else the option's default,
/// else (only for an option the validating set did not declare, or declared with another value
/// type) [`OptionValue::fallback`]. [`get_optional`](Self::get_optional) returns `None` instead
/// of the fallback.
#[derive(Clone)]
pub struct ValidatedConfig {
    set_name: String,
    values: BTreeMap<String, StoredValue>,
    prefixed: BTreeMap<String, BTreeMap<String, String>>,
    warnings: Vec<ConfigWarning>,
}

impl ValidatedConfig {
    /// The option's value: as given, else its default, else [`OptionValue::fallback`].
    pub fn get<T: OptionValue>(&self, option: &ConfigOption<T>) -> T {
        self.get_optional(option).unwrap_or_else(T::fallback)
    }

    /// The option's value as given, else its default, else `None`.
    pub fn get_optional<T: OptionValue>(&self, option: &ConfigOption<T>) -> Option<T> {
        self.values
            .get(option.key())
            .and_then(|stored| stored.value.downcast_ref::<T>())
            .cloned()
            .or_else(|| option.default().cloned())
    }

    /// Whether the user set the option (under its key or a deprecated name).
    pub fn is_set<T>(&self, option: &ConfigOption<T>) -> bool {
        self.values.contains_key(option.key())
    }

    /// The properties given under a declared `prefix`, prefix stripped; empty for an undeclared
    /// prefix.
    pub fn prefixed(&self, prefix: &str) -> &BTreeMap<String, String> {
        self.prefixed.get(prefix).unwrap_or(&NO_PROPERTIES)
    }

    /// Warnings about accepted input, such as deprecated keys.
    pub fn warnings(&self) -> &[ConfigWarning] {
        &self.warnings
    }

    /// The name of the set that validated this configuration.
    pub fn set_name(&self) -> &str {
        &self.set_name
    }

    /// The given options under their current keys, values in canonical form, plus the prefixed
    /// properties. Defaults are not included. Validating the result gives the same values.
    pub fn to_map(&self) -> BTreeMap<String, String> {
        let mut map: BTreeMap<String, String> = self
            .prefixed
            .iter()
            .flat_map(|(prefix, properties)| {
                properties
                    .iter()
                    .map(move |(key, value)| (format!("{prefix}{key}"), value.clone()))
            })
            .collect();
        for (key, stored) in &self.values {
            map.insert(key.clone(), stored.rendered.clone());
        }
        map
    }
}

impl fmt::Debug for ValidatedConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let values: BTreeMap<&str, &str> = self
            .values
            .iter()
            .map(|(key, stored)| {
                let shown = if stored.sensitive {
                    MASK
                } else {
                    stored.rendered.as_str()
                };
                (key.as_str(), shown)
            })
            .collect();
        f.debug_struct("ValidatedConfig")
            .field("set_name", &self.set_name)
            .field("values", &values)
            .field("prefixed", &self.prefixed)
            .field("warnings", &self.warnings)
            .finish()
    }
}
