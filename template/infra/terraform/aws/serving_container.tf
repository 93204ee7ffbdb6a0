# serving = container: the FastAPI image as an ECS Fargate service in the private subnets, behind an internet-facing
# Application Load Balancer (HTTPS only, WAF in front) in public subnets. Created once var.image_tag is set.
#
# Nobody reaches the API unauthenticated unless this stack says so: the load balancer admits no client network until
# allowed_ingress_cidrs lists one, and var.api_auth says who checks callers (the load balancer against the
# organisation's OIDC identity provider by default; the service's own API-key check; or "public", an explicit choice).

variable "certificate_arn" {
  description = "ACM certificate (same region) for the HTTPS listener; required once image_tag is set."
  type        = string
  default     = ""
}

variable "service_domain" {
  description = "DNS name of the service (covered by certificate_arn, a CNAME or alias to alb_dns_name)."
  type        = string
  default     = ""
}

variable "allowed_ingress_cidrs" {
  description = "Client CIDR blocks allowed to reach the load balancer. None by default: no client connects until listed."
  type        = list(string)
  default     = []
}

variable "api_auth" {
  description = <<-EOT
    Who authenticates API callers. "oidc": the HTTPS listener, against the organisation's OIDC identity provider (var.oidc),
    before anything is forwarded (the service runs with AUTH_MODE=gateway behind it); "api_key": the service itself
    (AUTH_MODE=api_key, keys from the Secrets Manager secret api_keys_secret_arn); "public": nobody, a deliberate choice.
  EOT
  type        = string
  default     = "oidc"

  validation {
    condition     = contains(["oidc", "api_key", "public"], var.api_auth)
    error_message = "api_auth must be oidc, api_key or public."
  }
}

variable "oidc" {
  description = "The organisation's OIDC identity provider for api_auth = \"oidc\"; client_secret_arn is a Secrets Manager secret holding the client secret (never the secret itself)."
  type = object({
    issuer                 = string
    authorization_endpoint = string
    token_endpoint         = string
    user_info_endpoint     = string
    client_id              = string
    client_secret_arn      = string
  })
  default = null
}

variable "api_keys_secret_arn" {
  description = "Secrets Manager secret with the service's API keys (comma-separated), for api_auth = \"api_key\"."
  type        = string
  default     = ""
}

variable "task_cpu" {
  description = "Fargate task CPU units (1024 = 1 vCPU)."
  type        = number
  default     = 512
}

variable "task_memory" {
  description = "Fargate task memory in MiB."
  type        = number
  default     = 1024
}

variable "web_concurrency" {
  description = "Uvicorn worker processes per task (about one per vCPU)."
  type        = number
  default     = 1
}

variable "min_capacity" {
  description = "Minimum number of running tasks (also the initial desired count)."
  type        = number
  default     = 1
}

variable "max_capacity" {
  description = "Maximum number of running tasks under load."
  type        = number
  default     = 2
}

variable "cpu_target_percent" {
  description = "Average CPU utilisation the service scales to."
  type        = number
  default     = 60
}

variable "requests_per_task_target" {
  description = "Requests per minute per task the service scales to."
  type        = number
  default     = 600
}

variable "waf_rate_limit_per_ip" {
  description = "Requests per 5 minutes one client IP may send before the WAF blocks it."
  type        = number
  default     = 2000
}

locals {
  container_name = "app"
  container_port = 8000
  # The load balancer sends traffic only to tasks whose /ready answers 200 (model loaded and usable); /health (the
  # process is alive) is the container's own liveness check in the Dockerfile.
  health_path = "/ready"
  # The environment variables of the service's authentication (src/<package>/ reads them): the load balancer
  # authenticates in "oidc" mode, so the service does not check again; "public" is the deliberate opt-out.
  waf_body_limit_bytes = 8192
  service_auth_mode    = lookup({ oidc = "gateway", public = "none" }, var.api_auth, "api_key") # AUTH_MODE
  service_host         = var.service_domain != "" ? var.service_domain : try(aws_lb.api[0].dns_name, "")
  service_url          = local.serving_enabled ? "https://${local.service_host}" : ""
}

# Security groups: clients -> load balancer (443, and 80 for the redirect) -> tasks (8000) -> AWS endpoints.

resource "aws_security_group" "alb" {
  name        = "${local.name}-alb"
  description = "Load balancer of ${local.name}: HTTPS from the allowed clients, HTTP only to the tasks"
  vpc_id      = aws_vpc.main.id

  tags = { Name = "${local.name}-alb" }
}

resource "aws_vpc_security_group_ingress_rule" "alb_https" {
  for_each = toset(var.allowed_ingress_cidrs)

  security_group_id = aws_security_group.alb.id
  description       = "HTTPS from allowed clients"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_ingress_rule" "alb_http_redirect" {
  #checkov:skip=CKV_AWS_260:Port 80 only answers with a 301 redirect to HTTPS; no content is served over HTTP.
  for_each = toset(var.allowed_ingress_cidrs)

  security_group_id = aws_security_group.alb.id
  description       = "HTTP from allowed clients, answered with a redirect to HTTPS"
  ip_protocol       = "tcp"
  from_port         = 80
  to_port           = 80
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_egress_rule" "alb_to_tasks" {
  security_group_id            = aws_security_group.alb.id
  description                  = "Requests and health checks to the tasks"
  ip_protocol                  = "tcp"
  from_port                    = local.container_port
  to_port                      = local.container_port
  referenced_security_group_id = aws_security_group.api_tasks.id
}

resource "aws_vpc_security_group_ingress_rule" "api_tasks_from_alb" {
  security_group_id            = aws_security_group.api_tasks.id
  description                  = "Requests and health checks from the load balancer only"
  ip_protocol                  = "tcp"
  from_port                    = local.container_port
  to_port                      = local.container_port
  referenced_security_group_id = aws_security_group.alb.id
}

# The service's tasks: no route to the internet, egress only to the AWS endpoints and S3.
resource "aws_security_group" "api_tasks" {
  name        = "${local.name}-api-tasks"
  description = "Service tasks of ${local.name}: requests from the load balancer; egress to AWS endpoints and S3 only"
  vpc_id      = aws_vpc.main.id

  tags = { Name = "${local.name}-api-tasks" }
}

resource "aws_vpc_security_group_egress_rule" "api_tasks_to_endpoints" {
  security_group_id            = aws_security_group.api_tasks.id
  description                  = "HTTPS to the interface endpoints (ECR, CloudWatch Logs)"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = aws_security_group.endpoints.id
}

resource "aws_vpc_security_group_egress_rule" "api_tasks_to_s3" {
  security_group_id = aws_security_group.api_tasks.id
  description       = "HTTPS to S3 through the gateway endpoint (image layers, data and model objects)"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  prefix_list_id    = aws_vpc_endpoint.s3.prefix_list_id
}

# Load balancer

resource "aws_lb" "api" {
  count = local.serving_enabled ? 1 : 0

  name                       = local.name
  load_balancer_type         = "application"
  internal                   = false
  subnets                    = aws_subnet.public[*].id
  security_groups            = [aws_security_group.alb.id]
  drop_invalid_header_fields = true
  desync_mitigation_mode     = "strictest"
  enable_deletion_protection = local.is_production
  idle_timeout               = 30

  access_logs {
    bucket  = aws_s3_bucket.logs.id
    prefix  = "alb"
    enabled = true
  }

  depends_on = [aws_s3_bucket_policy.logs]
}

resource "aws_lb_target_group" "api" {
  #checkov:skip=CKV_AWS_378:TLS ends at the load balancer; the hop to the task stays in private subnets that only the load balancer's security group can reach.
  count = local.serving_enabled ? 1 : 0

  name                 = local.name
  port                 = local.container_port
  protocol             = "HTTP"
  target_type          = "ip"
  vpc_id               = aws_vpc.main.id
  deregistration_delay = 30

  health_check {
    path                = local.health_path
    port                = "traffic-port"
    matcher             = "200"
    interval            = 15
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }
}

# The OIDC client secret is read from Secrets Manager at apply time: it never appears in tfvars or in git.
data "aws_secretsmanager_secret_version" "oidc_client" {
  count = local.serving_enabled && var.api_auth == "oidc" && var.oidc != null ? 1 : 0

  secret_id = var.oidc.client_secret_arn
}

resource "aws_lb_listener" "https" {
  count = local.serving_enabled ? 1 : 0

  load_balancer_arn = aws_lb.api[0].arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = var.certificate_arn

  # api_auth = "oidc": a caller without a valid session of the organisation's identity provider gets 401, nothing is
  # forwarded. (The load balancer passes the verified identity to the task in the x-amzn-oidc-* headers.)
  dynamic "default_action" {
    for_each = var.api_auth == "oidc" ? [var.oidc] : []

    content {
      type  = "authenticate-oidc"
      order = 1

      authenticate_oidc {
        issuer                     = default_action.value.issuer
        authorization_endpoint     = default_action.value.authorization_endpoint
        token_endpoint             = default_action.value.token_endpoint
        user_info_endpoint         = default_action.value.user_info_endpoint
        client_id                  = default_action.value.client_id
        client_secret              = data.aws_secretsmanager_secret_version.oidc_client[0].secret_string
        on_unauthenticated_request = "deny"
        scope                      = "openid"
        session_timeout            = 3600
      }
    }
  }

  default_action {
    type             = "forward"
    order            = 2
    target_group_arn = aws_lb_target_group.api[0].arn
  }

  lifecycle {
    precondition {
      condition     = var.certificate_arn != ""
      error_message = "Set certificate_arn in envs/${var.environment}.tfvars (an ACM certificate of this region) before deploying an image."
    }
    precondition {
      condition     = var.api_auth != "oidc" || var.oidc != null
      error_message = "api_auth = \"oidc\" (the default): set oidc in envs/${var.environment}.tfvars (the organisation's identity provider; the client secret in Secrets Manager), or choose api_auth = \"api_key\" or, deliberately, \"public\"."
    }
    precondition {
      condition     = var.api_auth != "api_key" || var.api_keys_secret_arn != ""
      error_message = "api_auth = \"api_key\": set api_keys_secret_arn (the Secrets Manager secret with the service's API keys)."
    }
  }
}

# Readiness and liveness answer without a login (monitors and `make smoke` read them; they reveal nothing but "up").
resource "aws_lb_listener_rule" "probes" {
  count = local.serving_enabled && var.api_auth == "oidc" ? 1 : 0

  listener_arn = aws_lb_listener.https[0].arn
  priority     = 10

  action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.api[0].arn
  }

  condition {
    path_pattern {
      values = ["/health", "/ready"]
    }
  }
}

resource "aws_lb_listener" "http_redirect" {
  count = local.serving_enabled ? 1 : 0

  load_balancer_arn = aws_lb.api[0].arn
  port              = 80
  protocol          = "HTTP"

  default_action {
    type = "redirect"

    redirect {
      protocol    = "HTTPS"
      port        = "443"
      status_code = "HTTP_301"
    }
  }
}

# WAF: AWS managed common, known-bad-input and anonymous-IP rules plus a per-IP rate limit.

resource "aws_wafv2_web_acl" "api" {
  count = local.serving_enabled ? 1 : 0

  name  = local.name
  scope = "REGIONAL"

  default_action {
    allow {}
  }

  rule {
    name     = "common"
    priority = 1

    override_action {
      none {}
    }

    statement {
      managed_rule_group_statement {
        vendor_name = "AWS"
        name        = "AWSManagedRulesCommonRuleSet"

        # SizeRestrictions_BODY blocks (no override): a load balancer's WAF inspects only the first 8 KB of a body, so
        # a larger body is refused rather than passed uninspected. The task's MAX_REQUEST_BYTES is the same 8 KB.
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${local.name}-common"
      sampled_requests_enabled   = true
    }
  }

  rule {
    name     = "known-bad-inputs"
    priority = 2

    override_action {
      none {}
    }

    statement {
      managed_rule_group_statement {
        vendor_name = "AWS"
        name        = "AWSManagedRulesKnownBadInputsRuleSet"
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${local.name}-known-bad-inputs"
      sampled_requests_enabled   = true
    }
  }

  rule {
    name     = "anonymous-ip"
    priority = 3

    override_action {
      none {}
    }

    statement {
      managed_rule_group_statement {
        vendor_name = "AWS"
        name        = "AWSManagedRulesAnonymousIpList"

        # Callers of a model API are often servers in a cloud: count hosting-provider addresses, block Tor and VPNs.
        rule_action_override {
          name = "HostingProviderIPList"
          action_to_use {
            count {}
          }
        }
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${local.name}-anonymous-ip"
      sampled_requests_enabled   = true
    }
  }

  rule {
    name     = "rate-limit-per-ip"
    priority = 4

    action {
      block {}
    }

    statement {
      rate_based_statement {
        limit              = var.waf_rate_limit_per_ip
        aggregate_key_type = "IP"
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${local.name}-rate-limit"
      sampled_requests_enabled   = true
    }
  }

  visibility_config {
    cloudwatch_metrics_enabled = true
    metric_name                = local.name
    sampled_requests_enabled   = true
  }
}

resource "aws_wafv2_web_acl_association" "api" {
  count = local.serving_enabled ? 1 : 0

  resource_arn = aws_lb.api[0].arn
  web_acl_arn  = aws_wafv2_web_acl.api[0].arn
}

resource "aws_cloudwatch_log_group" "waf" {
  count = local.serving_enabled ? 1 : 0

  name              = "aws-waf-logs-${local.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.main.arn
}

resource "aws_wafv2_web_acl_logging_configuration" "api" {
  count = local.serving_enabled ? 1 : 0

  resource_arn            = aws_wafv2_web_acl.api[0].arn
  log_destination_configs = [aws_cloudwatch_log_group.waf[0].arn]

  redacted_fields {
    single_header {
      name = "authorization"
    }
  }
}

# Task

# api_auth = "api_key": ECS itself (the execution role) reads the keys' secret when it starts a task.
resource "aws_iam_role_policy" "task_execution_api_keys" {
  count = var.api_auth == "api_key" && var.api_keys_secret_arn != "" ? 1 : 0

  name   = "read-api-keys"
  role   = aws_iam_role.task_execution.id
  policy = data.aws_iam_policy_document.task_execution_api_keys.json
}

data "aws_iam_policy_document" "task_execution_api_keys" {
  statement {
    sid       = "ReadServiceApiKeys"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [var.api_keys_secret_arn != "" ? var.api_keys_secret_arn : "arn:${local.partition}:secretsmanager:${var.region}:${local.account_id}:secret:${local.name}-api-keys"]
  }
}

resource "aws_iam_role" "task" {
  name                 = "${local.name}-task"
  assume_role_policy   = data.aws_iam_policy_document.ecs_tasks_trust.json
  permissions_boundary = aws_iam_policy.boundary.arn
}

resource "aws_iam_role_policy" "task" {
  name   = "read-models-write-inference-log"
  role   = aws_iam_role.task.id
  policy = data.aws_iam_policy_document.task.json
}

data "aws_iam_policy_document" "task" {
  statement {
    sid       = "ReadModelArtifacts"
    actions   = ["s3:GetObject", "s3:ListBucket"]
    resources = [aws_s3_bucket.project["models"].arn, "${aws_s3_bucket.project["models"].arn}/*"]
  }

  statement {
    sid       = "DecryptModelArtifacts"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.main.arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${var.region}.amazonaws.com"]
    }
  }

  # serving/log_shipper.py uploads the closed inference log files: new objects under the prefix, nothing else
  # (no read, no delete, no other key of the data bucket).
  statement {
    sid       = "WriteInferenceLogOnly"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.project["data"].arn}/${local.inference_log_prefix}*"]
  }

  statement {
    sid       = "EncryptInferenceLog"
    actions   = ["kms:GenerateDataKey"]
    resources = [aws_kms_key.main.arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${var.region}.amazonaws.com"]
    }
  }
}

resource "aws_ecs_task_definition" "api" {
  count = local.serving_enabled ? 1 : 0

  family                   = local.name
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.task_cpu
  memory                   = var.task_memory
  execution_role_arn       = aws_iam_role.task_execution.arn
  task_role_arn            = aws_iam_role.task.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  # The root filesystem is read-only; the service writes only its sampled inference log, to scratch space, from
  # which the shipper in the same container uploads each closed file to the data bucket within a minute
  # (INFERENCE_LOG_ROTATE_SECONDS + INFERENCE_LOG_SHIP_SECONDS).
  volume {
    name = "tmp"
  }

  container_definitions = jsonencode([
    {
      name                   = local.container_name
      image                  = local.image_uri
      essential              = true
      readonlyRootFilesystem = true
      user                   = "10001:10001"
      portMappings           = [{ containerPort = local.container_port, protocol = "tcp" }]
      environment = concat([
        { name = "APP_ENV", value = var.environment },
        { name = "PORT", value = tostring(local.container_port) },
        { name = "WEB_CONCURRENCY", value = tostring(var.web_concurrency) },
        { name = "LOG_LEVEL", value = "info" },
        { name = "INFERENCE_LOG_DIR", value = "/tmp/inference" },
        { name = "INFERENCE_LOG_URI", value = local.inference_log_uri },
        { name = "INFERENCE_LOG_ROTATE_SECONDS", value = "60" },
        { name = "MAX_REQUEST_BYTES", value = tostring(local.waf_body_limit_bytes) },
        { name = "AUTH_MODE", value = local.service_auth_mode },
      ], local.feature_store_environment)
      # api_auth = "api_key": the keys come from Secrets Manager at task start (the execution role may read that secret).
      secrets         = var.api_auth == "api_key" ? [{ name = "API_KEYS", valueFrom = var.api_keys_secret_arn }] : []
      mountPoints     = [{ sourceVolume = "tmp", containerPath = "/tmp", readOnly = false }]
      linuxParameters = { initProcessEnabled = true, capabilities = { drop = ["ALL"] } }
      stopTimeout     = 30
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = aws_cloudwatch_log_group.app.name
          awslogs-region        = var.region
          awslogs-stream-prefix = "api"
        }
      }
    }
  ])
}

resource "aws_ecs_service" "api" {
  count = local.serving_enabled ? 1 : 0

  name                              = local.name
  cluster                           = aws_ecs_cluster.main.id
  task_definition                   = aws_ecs_task_definition.api[0].arn
  launch_type                       = "FARGATE"
  platform_version                  = "LATEST"
  desired_count                     = var.min_capacity
  health_check_grace_period_seconds = 60
  enable_ecs_managed_tags           = true
  propagate_tags                    = "SERVICE"
  # `make deploy` fails (and the circuit breaker has already rolled back) when the new tasks never get healthy.
  wait_for_steady_state = true

  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = aws_subnet.private[*].id
    security_groups  = [aws_security_group.api_tasks.id]
    assign_public_ip = false
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.api[0].arn
    container_name   = local.container_name
    container_port   = local.container_port
  }

  lifecycle {
    # Autoscaling owns the running count after creation.
    ignore_changes = [desired_count]
  }

  depends_on = [aws_lb_listener.https, aws_vpc_endpoint.interface]
}

# Autoscaling on CPU and on requests per task.

resource "aws_appautoscaling_target" "api" {
  count = local.serving_enabled ? 1 : 0

  service_namespace  = "ecs"
  resource_id        = "service/${aws_ecs_cluster.main.name}/${aws_ecs_service.api[0].name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = var.min_capacity
  max_capacity       = var.max_capacity
}

resource "aws_appautoscaling_policy" "api_cpu" {
  count = local.serving_enabled ? 1 : 0

  name               = "${local.name}-cpu"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.api[0].service_namespace
  resource_id        = aws_appautoscaling_target.api[0].resource_id
  scalable_dimension = aws_appautoscaling_target.api[0].scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = var.cpu_target_percent
    scale_in_cooldown  = 300
    scale_out_cooldown = 60

    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
  }
}

resource "aws_appautoscaling_policy" "api_requests" {
  count = local.serving_enabled ? 1 : 0

  name               = "${local.name}-requests"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.api[0].service_namespace
  resource_id        = aws_appautoscaling_target.api[0].resource_id
  scalable_dimension = aws_appautoscaling_target.api[0].scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = var.requests_per_task_target
    scale_in_cooldown  = 300
    scale_out_cooldown = 60

    predefined_metric_specification {
      predefined_metric_type = "ALBRequestCountPerTarget"
      resource_label         = "${aws_lb.api[0].arn_suffix}/${aws_lb_target_group.api[0].arn_suffix}"
    }
  }
}

output "api_auth" {
  description = "Who authenticates API callers (oidc, api_key or public): `make smoke` tests accordingly."
  value       = var.api_auth
}

output "api_keys_secret_arn" {
  description = "Secrets Manager secret with the service's API keys (api_auth = api_key), for callers and `make smoke`."
  value       = var.api_keys_secret_arn
}

output "alb_dns_name" {
  description = "DNS name of the load balancer: point service_domain at it (CNAME or Route 53 alias)."
  value       = try(aws_lb.api[0].dns_name, "")
}
