# serving = container: the ECS Fargate service behind the load balancer, planned against a mocked AWS provider with
# one environment's values (`make infra-test` runs this file with -var-file=envs/<environment>.tfvars).

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

variables {
  certificate_arn = "arn:aws:acm:us-east-1:123456789012:certificate/00000000-0000-0000-0000-000000000000"
  image_digest    = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
  oidc = {
    issuer                 = "https://login.example.com"
    authorization_endpoint = "https://login.example.com/authorize"
    token_endpoint         = "https://login.example.com/token"
    user_info_endpoint     = "https://login.example.com/userinfo"
    client_id              = "model-api"
    client_secret_arn      = "arn:aws:secretsmanager:us-east-1:123456789012:secret:model-api-oidc-AbCdEf" # pragma: allowlist secret (a made-up ARN)
  }
}

run "first_apply_creates_no_serving_resources" {
  command = plan

  variables {
    image_tag    = ""
    image_digest = ""
  }

  assert {
    condition = (
      length(aws_ecs_service.api) == 0 && length(aws_lb.api) == 0 && length(aws_wafv2_web_acl.api) == 0
      && length(aws_vpc_endpoint.interface) == 0 && output.service_url == ""
    )
    error_message = "the load balancer, service, WAF or interface endpoints are planned before an image tag is given"
  }
}

run "deploy_of_an_image_tag" {
  command = plan

  variables {
    image_tag = "c0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ff"
  }

  assert {
    condition     = length(aws_ecs_service.api) == 1 && length(aws_lb.api) == 1 && length(aws_wafv2_web_acl_association.api) == 1
    error_message = "a deploy does not plan the service, its load balancer and the WAF in front of it"
  }

  assert {
    condition     = output.image_tag == "c0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ff"
    error_message = "the deployed image tag is not an output (make deployed-image-tag reads it)"
  }

  # The inference log: the task's shipper uploads to the prefix drift-pull reads, and its role may only add objects there.
  assert {
    condition = (
      contains(jsondecode(aws_ecs_task_definition.api[0].container_definitions)[0].environment, { name = "INFERENCE_LOG_URI", value = "s3://${var.project}-data-${var.environment}/inference/" })
      && one([for statement in data.aws_iam_policy_document.task.statement : statement.actions if statement.sid == "WriteInferenceLogOnly"]) == toset(["s3:PutObject"])
      && local.inference_log_prefix == "inference/"
      && length([for statement in data.aws_iam_policy_document.task.statement : statement if contains(statement.actions, "s3:DeleteObject") || contains(statement.actions, "s3:*")]) == 0
    )
    error_message = "the task does not ship its inference log to s3://<data bucket>/inference/, or its role may do more than add objects there"
  }

  # Autoscaling bounds: what envs/<environment>.tfvars asks for, and production never below two tasks.
  assert {
    condition = (
      aws_appautoscaling_target.api[0].min_capacity == var.min_capacity
      && aws_appautoscaling_target.api[0].max_capacity == var.max_capacity
      && var.min_capacity >= 1 && var.min_capacity <= var.max_capacity
      && aws_ecs_service.api[0].desired_count == var.min_capacity
      && (var.environment != "production" || var.min_capacity >= 2)
    )
    error_message = "autoscaling bounds are not 1 <= min <= max (production: min >= 2), or the service starts outside them"
  }

  assert {
    condition = (
      aws_lb.api[0].enable_deletion_protection == (var.environment == "production")
      && aws_lb.api[0].drop_invalid_header_fields && !aws_lb.api[0].internal
      && alltrue([for logs in aws_lb.api[0].access_logs : logs.enabled && logs.prefix == "alb"])
    )
    error_message = "the load balancer must be deletion-protected in production (only), drop invalid headers and log access"
  }

  assert {
    condition = (
      aws_lb_listener.https[0].protocol == "HTTPS" && startswith(aws_lb_listener.https[0].ssl_policy, "ELBSecurityPolicy-TLS13")
      && aws_lb_listener.https[0].certificate_arn == var.certificate_arn
      && alltrue([for action in aws_lb_listener.http_redirect[0].default_action : action.type == "redirect" && alltrue([for r in action.redirect : r.protocol == "HTTPS" && r.status_code == "HTTP_301"])])
    )
    error_message = "clients are not served HTTPS only (TLS 1.3 policy, plain HTTP redirected)"
  }

  assert {
    condition = alltrue([
      for network in aws_ecs_service.api[0].network_configuration : !network.assign_public_ip
    ]) && alltrue([for breaker in aws_ecs_service.api[0].deployment_circuit_breaker : breaker.enable && breaker.rollback])
    error_message = "tasks must have no public IP, and a failed deployment must roll back"
  }

  assert {
    condition = (
      aws_ecs_task_definition.api[0].cpu == tostring(var.task_cpu) && aws_ecs_task_definition.api[0].memory == tostring(var.task_memory)
      && jsondecode(aws_ecs_task_definition.api[0].container_definitions)[0].readonlyRootFilesystem
      && jsondecode(aws_ecs_task_definition.api[0].container_definitions)[0].portMappings[0].containerPort == 8000
    )
    error_message = "the task does not run the image read-only on port 8000 with the environment's CPU and memory"
  }
}

run "deploy_without_a_certificate_is_refused" {
  command = plan

  variables {
    image_tag       = "0123456789abcdef"
    certificate_arn = ""
  }

  expect_failures = [aws_lb_listener.https]
}

run "three_availability_zones" {
  command = plan

  variables {
    image_tag = "0123456789abcdef"
    az_count  = 3
  }

  assert {
    condition = (
      length(aws_subnet.private) == 3 && length(aws_subnet.public) == 3
      && length(distinct([for subnet in aws_subnet.private : subnet.availability_zone])) == 3
      && alltrue([for subnet in concat(aws_subnet.private, aws_subnet.public) : !subnet.map_public_ip_on_launch])
    )
    error_message = "az_count = 3 must spread private and public subnets over three zones, none assigning public IPs"
  }
}

# Nobody reaches the API unauthenticated by default: no client network is admitted until listed, and the HTTPS
# listener authenticates against the organisation's identity provider before it forwards anything.
run "authenticated_by_default" {
  command = plan

  variables {
    image_tag = "0123456789abcdef"
  }

  assert {
    condition     = length(var.allowed_ingress_cidrs) == 0 && length(aws_vpc_security_group_ingress_rule.alb_https) == 0 && length(aws_vpc_security_group_ingress_rule.alb_http_redirect) == 0
    error_message = "the load balancer admits client networks nobody listed (allowed_ingress_cidrs must default to none)"
  }

  assert {
    condition = (
      var.api_auth == "oidc"
      && [for action in aws_lb_listener.https[0].default_action : action.type] == ["authenticate-oidc", "forward"]
      && alltrue([
        for action in aws_lb_listener.https[0].default_action : alltrue([
          for oidc in action.authenticate_oidc :
          oidc.on_unauthenticated_request == "deny" && oidc.issuer == var.oidc.issuer && oidc.client_id == var.oidc.client_id
          && oidc.client_secret == data.aws_secretsmanager_secret_version.oidc_client[0].secret_string
        ])
      ])
      && data.aws_secretsmanager_secret_version.oidc_client[0].secret_id == var.oidc.client_secret_arn
    )
    error_message = "the HTTPS listener forwards before authenticating callers (authenticate-oidc, deny, client secret from Secrets Manager)"
  }

  # Only the probes pass without a login; the service behind the authenticating load balancer does not check again.
  assert {
    condition = (
      length(aws_lb_listener_rule.probes[0].condition) == 1
      && alltrue([for condition in aws_lb_listener_rule.probes[0].condition : length(condition.path_pattern) == 1 && alltrue([for path in condition.path_pattern : toset(path.values) == toset(["/health", "/ready"])])])
      && contains(jsondecode(aws_ecs_task_definition.api[0].container_definitions)[0].environment, { name = "AUTH_MODE", value = "gateway" })
    )
    error_message = "paths other than /health and /ready bypass the login, or AUTH_MODE is not set for the task"
  }
}

run "oidc_without_an_identity_provider_is_refused" {
  command = plan

  variables {
    image_tag = "0123456789abcdef"
    oidc      = null
  }

  expect_failures = [aws_lb_listener.https]
}

run "api_keys_checked_by_the_service" {
  command = plan

  variables {
    image_tag           = "0123456789abcdef"
    api_auth            = "api_key"
    api_keys_secret_arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:model-api-keys-AbCdEf" # pragma: allowlist secret (a made-up ARN)
  }

  assert {
    condition = (
      [for action in aws_lb_listener.https[0].default_action : action.type] == ["forward"]
      && contains(jsondecode(aws_ecs_task_definition.api[0].container_definitions)[0].environment, { name = "AUTH_MODE", value = "api_key" })
      && jsondecode(aws_ecs_task_definition.api[0].container_definitions)[0].secrets == [{ name = "API_KEYS", valueFrom = var.api_keys_secret_arn }]
      && length(aws_iam_role_policy.task_execution_api_keys) == 1
    )
    error_message = "api_auth = api_key must run the service with AUTH_MODE=api_key and its keys from Secrets Manager"
  }
}

run "public_is_an_explicit_choice" {
  command = plan

  variables {
    image_tag             = "0123456789abcdef"
    api_auth              = "public"
    allowed_ingress_cidrs = ["0.0.0.0/0"]
  }

  assert {
    condition = (
      [for action in aws_lb_listener.https[0].default_action : action.type] == ["forward"]
      && length(aws_vpc_security_group_ingress_rule.alb_https) == 1
    )
    error_message = "api_auth = public with allowed_ingress_cidrs must forward without a login"
  }
}

# Traffic goes only to tasks whose model is loaded: the target group checks /ready, not /health.
run "load_balancer_checks_readiness" {
  command = plan

  variables {
    image_tag = "0123456789abcdef"
  }

  assert {
    condition     = alltrue([for check in aws_lb_target_group.api[0].health_check : check.path == "/ready" && check.matcher == "200"])
    error_message = "the target group's health check is not /ready: a task without a usable model would get traffic"
  }

  # The WAF refuses bodies it cannot inspect (8 KB on a load balancer) instead of counting them, and the service
  # refuses the same size itself.
  assert {
    condition = alltrue(flatten([
      for rule in aws_wafv2_web_acl.api[0].rule : [
        for statement in rule.statement : [
          for group in statement.managed_rule_group_statement : [
            for override in group.rule_action_override : override.name != "SizeRestrictions_BODY"
          ]
        ]
      ]
    ])) && contains(jsondecode(aws_ecs_task_definition.api[0].container_definitions)[0].environment, { name = "MAX_REQUEST_BYTES", value = "8192" })
    error_message = "the WAF's body-size rule only counts, or the task accepts bodies the WAF cannot inspect"
  }

  assert {
    condition = (
      jsondecode(aws_ecs_task_definition.api[0].container_definitions)[0].image == "${local.image_repository_url}@${var.image_digest}"
      && aws_iam_role.task.permissions_boundary == aws_iam_policy.boundary.arn
      && aws_iam_role.task_execution.permissions_boundary == aws_iam_policy.boundary.arn
    )
    error_message = "the task does not run the image by digest, or its roles lack the permissions boundary"
  }
}

run "production_deploys_by_digest_only" {
  command = plan

  variables {
    environment  = "production"
    image_tag    = "0123456789abcdef"
    image_digest = ""
  }

  expect_failures = [var.image_digest]
}
