# Plans of this root module against a mocked AWS provider (no account, no credentials, no network), with the values
# of one environment: `make infra-test` runs this file once per environment with -var-file=envs/<environment>.tfvars,
# so the assertions hold for the real staging and production settings. Serving-mode checks are in
# serving_<mode>.tftest.hcl. The mocked provider still validates every argument (ARNs, JSON policy documents).

mock_provider "aws" {
  source = "./tests/mocks"
}

# The ARNs of the stack's own policies are known only after an apply; the tests compare against these.
override_resource {
  target          = aws_iam_policy.boundary
  override_during = plan
  values = {
    arn = "arn:aws:iam::123456789012:policy/test-ci-boundary"
  }
}

override_resource {
  target          = aws_iam_policy.ci_services
  override_during = plan
  values = {
    arn = "arn:aws:iam::123456789012:policy/test-ci-services"
  }
}

run "tags_every_resource" {
  command = plan

  assert {
    condition     = alltrue([for key in ["project", "environment", "owner", "cost_center", "managed_by"] : contains(keys(local.default_tags), key)])
    error_message = "the provider's default_tags miss one of project, environment, owner, cost_center, managed_by"
  }

  assert {
    condition = (
      local.default_tags.project == var.project && local.default_tags.environment == var.environment
      && local.default_tags.owner == var.owner && local.default_tags.cost_center == var.cost_center
      && local.default_tags.managed_by == "terraform"
    )
    error_message = "default_tags do not carry this environment's project, environment, owner and cost_center"
  }

  assert {
    condition     = alltrue([for value in values(local.default_tags) : trimspace(value) != ""])
    error_message = "a default tag is empty: cost allocation and ownership would be lost"
  }
}

run "no_public_bucket" {
  command = plan

  assert {
    condition = (
      setsubtract(keys(aws_s3_bucket.project), var.orchestrator == "airflow" ? ["airflow"] : []) == toset(["data", "models"])
      && aws_s3_bucket.project["data"].bucket == "${var.project}-data-${var.environment}"
      && aws_s3_bucket.project["models"].bucket == "${var.project}-models-${var.environment}"
      && aws_s3_bucket.logs.bucket == "${var.project}-logs-${var.environment}"
    )
    error_message = "the buckets are not <project>-{data,models,logs}-<environment> (the DVC remote is the data bucket)"
  }

  assert {
    condition = alltrue([
      for block in concat(values(aws_s3_bucket_public_access_block.project), [aws_s3_bucket_public_access_block.logs]) :
      block.block_public_acls && block.block_public_policy && block.ignore_public_acls && block.restrict_public_buckets
    ])
    error_message = "a bucket's public access block leaves a public ACL or policy possible"
  }

  assert {
    condition = alltrue([
      for controls in concat(values(aws_s3_bucket_ownership_controls.project), [aws_s3_bucket_ownership_controls.logs]) :
      alltrue([for rule in controls.rule : rule.object_ownership == "BucketOwnerEnforced"])
    ])
    error_message = "a bucket still honours ACLs (object ownership is not BucketOwnerEnforced)"
  }

  assert {
    condition = alltrue([
      for config in values(aws_s3_bucket_server_side_encryption_configuration.project) :
      alltrue([for rule in config.rule : alltrue([for by_default in rule.apply_server_side_encryption_by_default : by_default.sse_algorithm == "aws:kms"])])
    ])
    error_message = "the data or model bucket is not encrypted with the project's KMS key"
  }

  assert {
    condition = alltrue([
      for document in concat(values(data.aws_iam_policy_document.tls_only), [data.aws_iam_policy_document.logs_bucket]) :
      anytrue([
        for statement in document.statement :
        statement.effect == "Deny" && contains(statement.actions, "s3:*")
        && anytrue([for condition in statement.condition : condition.variable == "aws:SecureTransport" && contains(condition.values, "false")])
      ])
    ])
    error_message = "a bucket policy does not deny requests without TLS"
  }

  assert {
    condition = alltrue([
      for document in concat(values(data.aws_iam_policy_document.tls_only), [data.aws_iam_policy_document.logs_bucket]) :
      alltrue([
        for statement in document.statement :
        coalesce(statement.effect, "Allow") == "Deny" || alltrue([for principal in statement.principals : !contains(principal.identifiers, "*")])
      ])
    ])
    error_message = "a bucket policy allows something to every principal (\"*\"): the bucket would be public"
  }

  assert {
    condition = alltrue([
      for name in values(local.buckets) : anytrue([
        for statement in data.aws_iam_policy_document.logs_bucket.statement :
        contains(statement.actions, "s3:PutObject") && anytrue([
          for condition in statement.condition :
          condition.variable == "aws:SourceArn" && condition.values == tolist(["arn:aws:s3:::${name}"])
        ])
      ])
    ])
    error_message = "a project bucket's access-log grant in the log bucket is not limited to that source bucket"
  }

  assert {
    condition     = alltrue([for config in values(aws_s3_bucket_versioning.project) : alltrue([for v in config.versioning_configuration : v.status == "Enabled"])])
    error_message = "the data or model bucket is not versioned (DVC and model history need replaced versions)"
  }
}

run "ci_trust_is_scoped_to_this_repository" {
  command = plan

  assert {
    condition     = can(regex("^[A-Za-z0-9-]+/[A-Za-z0-9._-]+$", var.github_repository)) && !strcontains(var.github_repository, "*")
    error_message = "github_repository must name one repository, without wildcards"
  }

  # Each role trusts exactly one kind of job of this repository: its environment, main, or pull requests.
  assert {
    condition = alltrue([
      for role, subject in {
        "ci"      = "repo:${var.github_repository}:environment:${var.environment}"
        "ci-main" = "repo:${var.github_repository}:ref:refs/heads/main"
        "ci-plan" = "repo:${var.github_repository}:pull_request"
      } :
      length(data.aws_iam_policy_document.github_trust[role].statement) == 1
      && alltrue([
        for statement in data.aws_iam_policy_document.github_trust[role].statement :
        statement.actions == toset(["sts:AssumeRoleWithWebIdentity"])
        && alltrue([for principal in statement.principals : principal.type == "Federated"])
        && anytrue([
          for condition in statement.condition :
          condition.test == "StringEquals" && condition.variable == "token.actions.githubusercontent.com:sub"
          && condition.values == tolist([subject])
        ])
        && anytrue([
          for condition in statement.condition :
          condition.test == "StringEquals" && condition.variable == "token.actions.githubusercontent.com:aud"
          && condition.values == tolist(["sts.amazonaws.com"])
        ])
      ])
    ])
    error_message = "a CI role's trust is not one exact subject of this repository (environment, main or pull_request) for STS"
  }

  assert {
    condition = alltrue(flatten([
      for document in values(data.aws_iam_policy_document.github_trust) : [
        for statement in document.statement : [
          for condition in statement.condition : alltrue([for value in condition.values : !strcontains(value, "*")])
        ]
      ]
    ]))
    error_message = "a trust condition contains a wildcard"
  }

  assert {
    condition = (
      aws_iam_role.ci.name == "${var.project}-${var.environment}-ci" && aws_iam_role.ci_plan.name == "${var.project}-${var.environment}-ci-plan"
      && aws_iam_role.ci.max_session_duration == 3600 && aws_iam_role.ci_plan.max_session_duration == 3600
      && aws_iam_role_policy_attachment.ci_plan_read_only.policy_arn == "arn:aws:iam::aws:policy/ReadOnlyAccess"
    )
    error_message = "the ci and ci-plan roles are not named, limited and (ci-plan) read-only as the workflows expect"
  }

  # ci-main (image push, DVC, drift) exists only in the stack that owns the shared image repository: staging.
  assert {
    condition = (
      length(aws_iam_role.ci_main) == (var.create_main_branch_role ? 1 : 0)
      && var.create_main_branch_role == var.create_image_repository
      && length(aws_ecr_repository.app) == (var.create_image_repository ? 1 : 0)
      && (var.environment == "staging") == var.create_image_repository
    )
    error_message = "staging must own the image repository and the ci-main role, production neither"
  }

  assert {
    condition = anytrue([
      for statement in data.aws_iam_policy_document.ci_plan.statement :
      statement.effect == "Deny" && contains(statement.actions, "s3:GetObject")
      && contains(statement.resources, "arn:aws:s3:::${var.project}-data-*/*")
      && contains(statement.resources, "arn:aws:s3:::${var.project}-models-*/*")
    ])
    error_message = "the pull-request plan role can read data or model objects"
  }
}

# The deploy role cannot make itself or anything it creates more powerful (issue: the staging role could rewrite its
# own policy through PutRolePolicy on role/<name>-*, and held PowerUserAccess).
run "ci_cannot_escalate" {
  command = plan

  assert {
    condition = (
      aws_iam_role_policy_attachment.ci_services.policy_arn == aws_iam_policy.ci_services.arn
      && alltrue([for statement in data.aws_iam_policy_document.ci_services.statement : alltrue([for action in statement.actions : !startswith(action, "iam:")])])
      && !anytrue([for statement in data.aws_iam_policy_document.ci_services.statement : contains(statement.actions, "*")])
    )
    error_message = "the ci role's services policy is not the stack's own (no PowerUserAccess, no IAM, no *)"
  }

  # Creating a role, writing or attaching its policies: only with the boundary on it.
  assert {
    condition = alltrue([
      for statement in data.aws_iam_policy_document.ci.statement :
      anytrue([
        for condition in statement.condition :
        condition.test == "StringEquals" && condition.variable == "iam:PermissionsBoundary"
        && condition.values == tolist([aws_iam_policy.boundary.arn])
      ])
      if statement.effect != "Deny" && length(setintersection(statement.actions, ["iam:CreateRole", "iam:PutRolePolicy", "iam:AttachRolePolicy", "iam:PutRolePermissionsBoundary"])) > 0
    ])
    error_message = "the ci role may create a role or write a role's policy without the permissions boundary"
  }

  # An explicit deny of every IAM write on its own role, its services policy and the boundary.
  assert {
    condition = anytrue([
      for statement in data.aws_iam_policy_document.ci.statement :
      statement.effect == "Deny"
      && contains(statement.resources, "arn:aws:iam::123456789012:role/${var.project}-${var.environment}-ci")
      && contains(statement.resources, aws_iam_policy.boundary.arn) && contains(statement.resources, aws_iam_policy.ci_services.arn)
      && alltrue([for action in ["iam:Put*", "iam:Attach*", "iam:Update*", "iam:Delete*", "iam:Create*"] : contains(statement.actions, action)])
    ])
    error_message = "the ci role can change itself, its services policy or the permissions boundary"
  }

  # The boundary: no IAM write for any role that carries it.
  assert {
    condition = anytrue([
      for statement in data.aws_iam_policy_document.boundary.statement :
      statement.effect == "Deny" && statement.resources == toset(["*"])
      && alltrue([for action in ["iam:Put*", "iam:Attach*", "iam:Create*", "iam:Update*"] : contains(statement.actions, action)])
    ])
    error_message = "the permissions boundary lets a role write IAM"
  }

  assert {
    condition = (
      aws_iam_role.ci_plan.permissions_boundary == aws_iam_policy.boundary.arn
      && alltrue([for role in aws_iam_role.ci_main : role.permissions_boundary == aws_iam_policy.boundary.arn])
    )
    error_message = "a role CI creates does not carry the permissions boundary"
  }

  assert {
    condition     = !anytrue([for statement in data.aws_iam_policy_document.ci.statement : contains(statement.actions, "iam:*")])
    error_message = "the ci role holds iam:*"
  }
}

run "budget_alerts_the_owner" {
  command = plan

  assert {
    condition = (
      var.monthly_budget_usd > 0
      && can(regex("^[0-9]+\\.[0-9]{2}$", aws_budgets_budget.monthly.limit_amount))
      && tonumber(aws_budgets_budget.monthly.limit_amount) == var.monthly_budget_usd
      && aws_budgets_budget.monthly.limit_unit == "USD" && aws_budgets_budget.monthly.time_unit == "MONTHLY"
      && aws_budgets_budget.monthly.budget_type == "COST"
    )
    error_message = "the budget is not envs/${var.environment}.tfvars' monthly_budget_usd in USD per month (as \"<amount>.00\")"
  }

  assert {
    condition = (
      length(aws_budgets_budget.monthly.cost_filter) == 1
      && alltrue([
        for filter in aws_budgets_budget.monthly.cost_filter :
        filter.name == "TagKeyValue" && filter.values == tolist([format("user:project$%s", var.project)])
      ])
    )
    error_message = "the budget does not filter on this project's cost-allocation tag (user:project$<project>)"
  }

  assert {
    condition = (
      length(aws_budgets_budget.monthly.notification) == 2
      && anytrue([for n in aws_budgets_budget.monthly.notification : n.notification_type == "ACTUAL" && n.threshold == 80 && n.threshold_type == "PERCENTAGE"])
      && anytrue([for n in aws_budgets_budget.monthly.notification : n.notification_type == "FORECASTED" && n.threshold == 100 && n.threshold_type == "PERCENTAGE"])
      && alltrue([for n in aws_budgets_budget.monthly.notification : n.subscriber_email_addresses == toset([var.alert_email])])
    )
    error_message = "the budget does not e-mail alert_email at 80% actual and 100% forecast spend"
  }
}

run "keys_logs_and_alerts" {
  command = plan

  assert {
    condition = (
      aws_kms_key.main.enable_key_rotation
      && aws_kms_key.main.deletion_window_in_days == (var.environment == "production" ? 30 : 7)
    )
    error_message = "the KMS key must rotate, and production's must wait 30 days before deletion"
  }

  assert {
    condition     = var.log_retention_days >= 365 && var.access_log_retention_days >= 365
    error_message = "logs must be kept at least a year"
  }

  assert {
    condition = alltrue([
      for repository in aws_ecr_repository.app :
      repository.image_tag_mutability == "IMMUTABLE" && alltrue([for scan in repository.image_scanning_configuration : scan.scan_on_push])
    ])
    error_message = "the image repository must have immutable tags and scan on push"
  }
}

run "first_apply_creates_no_serving_resources" {
  command = plan

  variables {
    image_tag = ""
  }

  assert {
    condition     = output.service_url == "" && output.image_tag == ""
    error_message = "a service URL before any image is deployed"
  }
}

# Variable combinations a team sets later: an account whose GitHub OIDC provider another stack owns, a production
# account that pulls images from staging's repository, and a repository that other accounts pull from.
run "existing_oidc_provider_and_cross_account_images" {
  command = plan

  variables {
    create_github_oidc_provider = false
    create_image_repository     = false
    create_main_branch_role     = false
    registry_account_id         = "210987654321"
  }

  assert {
    condition     = length(aws_iam_openid_connect_provider.github) == 0 && length(data.aws_iam_openid_connect_provider.github) == 1
    error_message = "with create_github_oidc_provider = false the stack must look the provider up, not create a second one"
  }

  assert {
    condition = alltrue([
      for document in values(data.aws_iam_policy_document.github_trust) : alltrue([
        for statement in document.statement : alltrue([
          for principal in statement.principals : principal.identifiers == toset([data.aws_iam_openid_connect_provider.github[0].arn])
        ])
      ])
    ])
    error_message = "the CI roles do not trust the account's existing GitHub OIDC provider"
  }

  assert {
    condition     = output.image_repository == "210987654321.dkr.ecr.${var.region}.amazonaws.com/${var.project}" && length(aws_ecr_repository.app) == 0
    error_message = "images must come from the registry account's repository, and no repository be created here"
  }
}

run "repository_shared_with_other_accounts" {
  command = plan

  variables {
    create_image_repository   = true
    registry_pull_account_ids = ["210987654321"]
  }

  assert {
    condition     = length(aws_ecr_repository_policy.cross_account_pull) == 1
    error_message = "registry_pull_account_ids must grant those accounts a pull policy"
  }

  assert {
    condition = alltrue([
      for statement in data.aws_iam_policy_document.cross_account_pull.statement :
      alltrue([for action in statement.actions : contains(["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"], action)])
      && alltrue([for principal in statement.principals : principal.identifiers == toset(["arn:aws:iam::210987654321:root"])])
    ])
    error_message = "other accounts may do more than pull, or accounts not listed may pull"
  }
}

run "refuses_an_unknown_environment" {
  command = plan

  variables {
    environment = "prod"
  }

  expect_failures = [var.environment]
}
