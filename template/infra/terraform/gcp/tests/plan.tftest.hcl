# Plans of this root module against a mocked Google provider (no project, no credentials, no network), with the
# values of one environment: `make infra-test` runs this file once per environment with
# -var-file=envs/<environment>.tfvars, so the assertions hold for the real staging and production settings.
# Serving-mode checks are in serving_<mode>.tftest.hcl.

mock_provider "google" {
  source = "./tests/mocks"
}

run "labels_every_resource" {
  command = plan

  assert {
    condition     = alltrue([for key in ["project", "environment", "owner", "cost_center", "managed_by"] : contains(keys(local.labels), key)])
    error_message = "the provider's default_labels miss one of project, environment, owner, cost_center, managed_by"
  }

  assert {
    condition = (
      local.labels.project == var.project && local.labels.environment == var.environment
      && local.labels.owner == var.owner && local.labels.cost_center == var.cost_center
      && local.labels.managed_by == "terraform"
    )
    error_message = "default_labels do not carry this environment's project, environment, owner and cost_center"
  }

  assert {
    condition     = alltrue([for value in values(local.labels) : can(regex("^[a-z0-9_-]{1,63}$", value))])
    error_message = "a label value is empty or not a valid GCP label value (lowercase letters, digits, - and _)"
  }
}

run "no_public_bucket" {
  command = plan

  assert {
    condition = (
      keys(google_storage_bucket.this) == ["data", "models"]
      && google_storage_bucket.this["data"].name == "${var.project}-data-${var.environment}"
      && google_storage_bucket.this["models"].name == "${var.project}-models-${var.environment}"
    )
    error_message = "the buckets are not <project>-{data,models}-<environment> (the DVC remote is the data bucket)"
  }

  assert {
    condition = alltrue([
      for bucket in concat(values(google_storage_bucket.this), [google_storage_bucket.access_logs]) :
      bucket.public_access_prevention == "enforced" && bucket.uniform_bucket_level_access && !bucket.force_destroy
      && alltrue([for v in bucket.versioning : v.enabled])
    ])
    error_message = "a bucket allows public access or ACLs, is not versioned, or may be destroyed with its objects"
  }
}

run "ci_trust_is_scoped_to_this_repository" {
  command = plan

  assert {
    condition = alltrue([
      for subject in var.github_oidc_subjects : !strcontains(subject, "*") && can(regex("^(environment:[a-z]+|ref:refs/heads/main|pull_request)$", subject))
    ]) && !strcontains(var.github_repository, "*")
    error_message = "a trusted GitHub subject has a wildcard or is not an environment, main or pull_request"
  }

  assert {
    condition = (
      google_iam_workload_identity_pool_provider.github.attribute_condition
      == "assertion.repository == \"${var.github_repository}\" && assertion.sub in ${jsonencode([for s in var.github_oidc_subjects : "repo:${var.github_repository}:${s}"])} && (!assertion.sub.startsWith(\"repo:${var.github_repository}:environment:\") || assertion.ref in ${jsonencode(var.github_deploy_refs)})"
      && var.github_deploy_refs == ["refs/heads/main"]
      && alltrue([for oidc in google_iam_workload_identity_pool_provider.github.oidc : oidc.issuer_uri == "https://token.actions.githubusercontent.com"])
    )
    error_message = "the workload identity provider accepts tokens beyond this repository's listed subjects, or environment jobs from other refs than main"
  }

  # Production trusts only jobs of its protected GitHub environment; staging also main and pull requests (plan).
  assert {
    condition = (
      contains(var.github_oidc_subjects, "environment:${var.environment}")
      && (var.environment != "production" || var.github_oidc_subjects == ["environment:production"])
    )
    error_message = "production must trust only the `production` environment's jobs, and each stack its own environment"
  }

  assert {
    condition     = length(google_service_account.ci_plan) == (contains(var.github_oidc_subjects, "pull_request") ? 1 : 0)
    error_message = "the read-only plan service account must exist exactly when pull requests are trusted"
  }
}

run "budget_alerts_the_owner" {
  command = plan

  variables {
    billing_account = "012345-6789AB-CDEF01"
  }

  assert {
    condition = (
      var.monthly_budget > 0 && length(google_billing_budget.monthly) == 1
      && alltrue([for amount in google_billing_budget.monthly[0].amount : alltrue([for specified in amount.specified_amount : specified.units == tostring(var.monthly_budget)])])
    )
    error_message = "the budget is not envs/${var.environment}.tfvars' monthly_budget"
  }

  assert {
    condition = (
      anytrue([for rule in google_billing_budget.monthly[0].threshold_rules : rule.threshold_percent == 1.0 && rule.spend_basis == "FORECASTED_SPEND"])
      && anytrue([for rule in google_billing_budget.monthly[0].threshold_rules : rule.threshold_percent == 0.9 && rule.spend_basis == "CURRENT_SPEND"])
      && google_monitoring_notification_channel.email.labels.email_address == var.alert_email
    )
    error_message = "the budget does not e-mail alert_email at 90% spend and 100% forecast"
  }
}

run "no_budget_without_a_billing_account" {
  command = plan

  variables {
    billing_account = ""
  }

  assert {
    condition     = length(google_billing_budget.monthly) == 0
    error_message = "a budget needs a billing account: none may be planned without one"
  }
}

run "deletion_protection_in_production" {
  command = plan

  assert {
    condition     = var.environment != "production" || var.deletion_protection
    error_message = "production must be deletion-protected"
  }
}

run "refuses_an_unknown_environment" {
  command = plan

  variables {
    environment = "prod"
  }

  expect_failures = [var.environment]
}
