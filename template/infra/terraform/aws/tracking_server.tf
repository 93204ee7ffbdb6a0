# tracking_server = self_hosted: the shared MLflow tracking server and model registry of this environment.
#
#   clients -(HTTPS)-> load balancer (public subnets) -> OAuth2-proxy :4180 -> MLflow :5000 (same Fargate task, private
#   subnets; egress only through one NAT gateway) -> Aurora Serverless v2 PostgreSQL (backend store, private subnets)
#                                                                              \-> S3 (artefacts, served by MLflow)
#
# - Who gets in: OAuth2-proxy logs people in with the organisation's OIDC identity provider (var.tracking_oidc, only
#   its e-mail domains), and accepts GitHub Actions OIDC ID tokens as bearer tokens (no long-lived secret in CI):
#   issuer token.actions.githubusercontent.com, audience output.tracking_audience, and only the subjects of
#   var.tracking_ci_subjects (this repository's environment and main branch by default; OAuth2-proxy names a bearer
#   session by its subject, and the allow-list file holds exactly those subjects). .github/actions/tracking-auth
#   requests that token.
# - Artefacts: `--serve-artifacts`, so clients upload and download through the server with no bucket rights; the
#   bucket's policy denies its objects to every principal but the server's task role.
# - Backend store: Aurora PostgreSQL encrypted with the project key; its master password is generated and kept by
#   RDS in Secrets Manager (never in state or tfvars), read by ECS at task start. When RDS rotates it, the MLflow
#   container's health check (a real database connection) fails and ECS replaces the task, which reads the new one.
#   Production: deletion protection, 35 days of backups and a final snapshot.
#
# Nothing is created when var.tracking_server_url names the organisation's existing server (tracking_uri is then that
# URL), nor before var.tracking_oidc is set, as serving waits for an image: until then tracking_uri is "" and CI's
# tracking steps stop with "set MLFLOW_TRACKING_URI".

variable "tracking_server_url" {
  description = "HTTPS URL of the organisation's existing MLflow server: set, this stack creates no tracking server and points clients at it. \"\": the stack runs its own."
  type        = string
  default     = ""

  validation {
    condition     = var.tracking_server_url == "" || can(regex("^https://[^/\\s]+(/.*)?$", var.tracking_server_url))
    error_message = "tracking_server_url must be an https:// URL (or \"\" to create the server)."
  }
}

variable "tracking_server_audience" {
  description = "Audience CI's GitHub OIDC token is requested for when tracking_server_url is set (what that server's OAuth2-proxy expects); \"\": the URL itself."
  type        = string
  default     = ""
}

variable "tracking_oidc" {
  description = "The organisation's OIDC identity provider for people logging in to MLflow: issuer, the proxy's client id, Secrets Manager secrets holding its client secret and its cookie secret (32 random bytes, base64), and the e-mail domains let in."
  type = object({
    issuer            = string
    client_id         = string
    client_secret_arn = string
    cookie_secret_arn = string
    email_domains     = list(string)
  })
  default = null

  validation {
    condition     = var.tracking_oidc == null || try(startswith(var.tracking_oidc.issuer, "https://") && length(var.tracking_oidc.email_domains) > 0 && !contains(var.tracking_oidc.email_domains, "*"), false)
    error_message = "tracking_oidc needs an https:// issuer and at least one e-mail domain (never \"*\": that would let any account of the issuer in)."
  }
}

variable "tracking_server_image" {
  description = "MLflow server image by digest (<repository>@sha256:<64 hex>), with psycopg2 and boto3 installed (ghcr.io/mlflow/mlflow has neither: build FROM it, push to ECR)."
  type        = string
  default     = ""

  validation {
    condition     = var.tracking_server_image == "" || can(regex("^[^@\\s]+@sha256:[0-9a-f]{64}$", var.tracking_server_image))
    error_message = "tracking_server_image must be pinned by digest: <repository>@sha256:<64 lowercase hex digits>."
  }
}

variable "tracking_proxy_image" {
  description = "OAuth2-proxy image by digest (<repository>@sha256:<64 hex>), e.g. quay.io/oauth2-proxy/oauth2-proxy:v7.x mirrored to ECR."
  type        = string
  default     = ""

  validation {
    condition     = var.tracking_proxy_image == "" || can(regex("^[^@\\s]+@sha256:[0-9a-f]{64}$", var.tracking_proxy_image))
    error_message = "tracking_proxy_image must be pinned by digest: <repository>@sha256:<64 lowercase hex digits>."
  }
}

variable "tracking_domain" {
  description = "DNS name of the tracking server (covered by tracking_certificate_arn, a CNAME or alias to the output tracking_alb_dns_name)."
  type        = string
  default     = ""
}

variable "tracking_certificate_arn" {
  description = "ACM certificate (same region) of tracking_domain for the tracking server's HTTPS listener."
  type        = string
  default     = ""
}

variable "tracking_allowed_ingress_cidrs" {
  description = "Client CIDR blocks allowed to reach the tracking server's load balancer (people, and GitHub's runners for CI). None by default."
  type        = list(string)
  default     = []
}

variable "tracking_ci_subjects" {
  description = "GitHub OIDC subjects (the `sub` claim) let in with a bearer token. Empty: this repository's jobs in this environment and on main."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for subject in var.tracking_ci_subjects : startswith(subject, "repo:") && !strcontains(subject, "*")])
    error_message = "tracking_ci_subjects are exact subjects (repo:<org>/<name>:...), never wildcards."
  }
}

variable "tracking_db_max_capacity" {
  description = "Upper bound of the Aurora Serverless v2 backend in ACUs (1 ACU is about 2 GiB of memory); it scales down to 0.5."
  type        = number
  default     = 2
}

variable "tracking_db_engine_version" {
  description = "Aurora PostgreSQL engine version of the backend store."
  type        = string
  default     = "16.6"
}

variable "tracking_task_cpu" {
  description = "Fargate CPU units of the tracking server task (MLflow and OAuth2-proxy)."
  type        = number
  default     = 1024
}

variable "tracking_task_memory" {
  description = "Fargate memory (MiB) of the tracking server task."
  type        = number
  default     = 2048
}

locals {
  tracking_create = var.tracking_server_url == "" && var.tracking_oidc != null
  tracking_count  = local.tracking_create ? 1 : 0
  # Load-balancer and target-group names are at most 32 characters.
  tracking_name   = "${trimsuffix(substr(local.name, 0, 25), "-")}-mlflow"
  tracking_bucket = local.access_logged_buckets["mlflow"]
  tracking_host   = var.tracking_domain != "" ? var.tracking_domain : try(aws_lb.tracking[0].dns_name, "")
  tracking_uri = (
    var.tracking_server_url != "" ? trimsuffix(var.tracking_server_url, "/")
    : local.tracking_create ? "https://${local.tracking_host}" : ""
  )
  tracking_audience  = var.tracking_server_audience != "" ? var.tracking_server_audience : local.tracking_uri
  tracking_ci_issuer = "https://token.actions.githubusercontent.com"
  tracking_ci_subjects = length(var.tracking_ci_subjects) > 0 ? var.tracking_ci_subjects : [
    "${local.github_subject_prefix}:environment:${var.environment}",
    "${local.github_subject_prefix}:ref:refs/heads/main",
  ]
  tracking_proxy_port  = 4180
  tracking_mlflow_port = 5000
  tracking_db_port     = 5432
}

# Network: the task's own private subnets, whose only way out is the NAT gateway (OAuth2-proxy fetches the identity
# providers' keys; ECS pulls the images and reads the secrets). The serving tasks' subnets keep no route out.

resource "aws_subnet" "tracking" {
  count = local.tracking_create ? var.az_count : 0

  vpc_id                  = aws_vpc.main.id
  availability_zone       = local.azs[count.index]
  cidr_block              = cidrsubnet(var.vpc_cidr, 8, 50 + count.index)
  map_public_ip_on_launch = false

  tags = { Name = "${local.name}-tracking-${local.azs[count.index]}" }
}

resource "aws_eip" "tracking_nat" {
  count = local.tracking_count

  domain = "vpc"

  tags = { Name = "${local.name}-tracking-nat" }
}

resource "aws_nat_gateway" "tracking" {
  count = local.tracking_count

  allocation_id = aws_eip.tracking_nat[0].id
  subnet_id     = aws_subnet.public[0].id

  tags = { Name = "${local.name}-tracking" }

  depends_on = [aws_internet_gateway.main]
}

resource "aws_route_table" "tracking" {
  count = local.tracking_count

  vpc_id = aws_vpc.main.id

  route {
    cidr_block     = "0.0.0.0/0"
    nat_gateway_id = aws_nat_gateway.tracking[0].id
  }

  tags = { Name = "${local.name}-tracking" }
}

resource "aws_route_table_association" "tracking" {
  count = local.tracking_create ? var.az_count : 0

  subnet_id      = aws_subnet.tracking[count.index].id
  route_table_id = aws_route_table.tracking[0].id
}

# Artefact traffic stays off the NAT gateway: a free S3 gateway endpoint of its own for the tracking route table (the
# serving subnets' endpoint in network.tf lists its route tables itself, so it cannot take another one from here).
resource "aws_vpc_endpoint" "tracking_s3" {
  count = local.tracking_count

  vpc_id            = aws_vpc.main.id
  service_name      = "com.amazonaws.${var.region}.s3"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = [aws_route_table.tracking[0].id]

  tags = { Name = "${local.name}-tracking-s3" }
}

# Security groups: allowed clients -> load balancer 443 -> OAuth2-proxy 4180; task -> PostgreSQL 5432 and HTTPS out.

resource "aws_security_group" "tracking_alb" {
  count = local.tracking_count

  name        = "${local.name}-tracking-alb"
  description = "Tracking server load balancer: HTTPS from the allowed clients, to OAuth2-proxy only"
  vpc_id      = aws_vpc.main.id

  tags = { Name = "${local.name}-tracking-alb" }
}

resource "aws_vpc_security_group_ingress_rule" "tracking_alb_https" {
  for_each = local.tracking_create ? toset(var.tracking_allowed_ingress_cidrs) : toset([])

  security_group_id = aws_security_group.tracking_alb[0].id
  description       = "HTTPS from allowed clients"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_egress_rule" "tracking_alb_to_proxy" {
  count = local.tracking_count

  security_group_id            = aws_security_group.tracking_alb[0].id
  description                  = "Requests and health checks to OAuth2-proxy"
  ip_protocol                  = "tcp"
  from_port                    = local.tracking_proxy_port
  to_port                      = local.tracking_proxy_port
  referenced_security_group_id = aws_security_group.tracking_task[0].id
}

resource "aws_security_group" "tracking_task" {
  count = local.tracking_count

  name        = "${local.name}-tracking-task"
  description = "Tracking server task: OAuth2-proxy from the load balancer; PostgreSQL and HTTPS out"
  vpc_id      = aws_vpc.main.id

  tags = { Name = "${local.name}-tracking-task" }
}

resource "aws_vpc_security_group_ingress_rule" "tracking_task_from_alb" {
  count = local.tracking_count

  security_group_id            = aws_security_group.tracking_task[0].id
  description                  = "OAuth2-proxy from the load balancer only (MLflow listens on 127.0.0.1)"
  ip_protocol                  = "tcp"
  from_port                    = local.tracking_proxy_port
  to_port                      = local.tracking_proxy_port
  referenced_security_group_id = aws_security_group.tracking_alb[0].id
}

resource "aws_vpc_security_group_egress_rule" "tracking_task_to_db" {
  count = local.tracking_count

  security_group_id            = aws_security_group.tracking_task[0].id
  description                  = "PostgreSQL to the backend store"
  ip_protocol                  = "tcp"
  from_port                    = local.tracking_db_port
  to_port                      = local.tracking_db_port
  referenced_security_group_id = aws_security_group.tracking_db[0].id
}

resource "aws_vpc_security_group_egress_rule" "tracking_task_https" {
  count = local.tracking_count

  security_group_id = aws_security_group.tracking_task[0].id
  description       = "HTTPS out through the NAT gateway: identity providers' keys, images, secrets, logs, S3"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_security_group" "tracking_db" {
  count = local.tracking_count

  name        = "${local.name}-tracking-db"
  description = "Tracking server backend store: PostgreSQL from the tracking task only, no egress"
  vpc_id      = aws_vpc.main.id

  tags = { Name = "${local.name}-tracking-db" }
}

resource "aws_vpc_security_group_ingress_rule" "tracking_db_from_task" {
  count = local.tracking_count

  security_group_id            = aws_security_group.tracking_db[0].id
  description                  = "PostgreSQL from the tracking server task only"
  ip_protocol                  = "tcp"
  from_port                    = local.tracking_db_port
  to_port                      = local.tracking_db_port
  referenced_security_group_id = aws_security_group.tracking_task[0].id
}

# Backend store: Aurora Serverless v2 PostgreSQL in the private subnets (no route out at all).

resource "aws_db_subnet_group" "tracking" {
  count = local.tracking_count

  name       = "${local.name}-tracking"
  subnet_ids = aws_subnet.private[*].id
}

resource "aws_rds_cluster_parameter_group" "tracking" {
  count = local.tracking_count

  name        = "${local.name}-tracking"
  family      = "aurora-postgresql${split(".", var.tracking_db_engine_version)[0]}"
  description = "${local.name} tracking backend: TLS only; connections, DDL and slow queries logged"

  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }

  parameter {
    name  = "log_connections"
    value = "1"
  }

  parameter {
    name  = "log_statement"
    value = "ddl"
  }

  # Queries slower than a second: what a slow MLflow UI or search needs looking at.
  parameter {
    name  = "log_min_duration_statement"
    value = "1000"
  }
}

resource "aws_rds_cluster" "tracking" {
  #checkov:skip=CKV2_AWS_8:Aurora's own continuous backups (35 days in production) and the final snapshot cover restores; an AWS Backup plan would duplicate them.
  count = local.tracking_count

  cluster_identifier                  = "${local.name}-tracking"
  engine                              = "aurora-postgresql"
  engine_mode                         = "provisioned"
  engine_version                      = var.tracking_db_engine_version
  database_name                       = "mlflow"
  master_username                     = "mlflow"
  manage_master_user_password         = true
  master_user_secret_kms_key_id       = aws_kms_key.main.arn
  storage_encrypted                   = true
  kms_key_id                          = aws_kms_key.main.arn
  db_subnet_group_name                = aws_db_subnet_group.tracking[0].name
  db_cluster_parameter_group_name     = aws_rds_cluster_parameter_group.tracking[0].name
  vpc_security_group_ids              = [aws_security_group.tracking_db[0].id]
  port                                = local.tracking_db_port
  iam_database_authentication_enabled = true
  enabled_cloudwatch_logs_exports     = ["postgresql"]
  backup_retention_period             = local.is_production ? 35 : 7
  preferred_backup_window             = "02:00-03:00"
  copy_tags_to_snapshot               = true
  deletion_protection                 = local.is_production
  skip_final_snapshot                 = !local.is_production
  final_snapshot_identifier           = local.is_production ? "${local.name}-tracking-final" : null
  apply_immediately                   = !local.is_production

  serverlessv2_scaling_configuration {
    min_capacity = 0.5
    max_capacity = var.tracking_db_max_capacity
  }
}

resource "aws_rds_cluster_instance" "tracking" {
  count = local.tracking_count

  identifier                            = "${local.name}-tracking-1"
  cluster_identifier                    = aws_rds_cluster.tracking[0].id
  instance_class                        = "db.serverless"
  engine                                = aws_rds_cluster.tracking[0].engine
  engine_version                        = aws_rds_cluster.tracking[0].engine_version
  db_subnet_group_name                  = aws_db_subnet_group.tracking[0].name
  publicly_accessible                   = false
  auto_minor_version_upgrade            = true
  performance_insights_enabled          = true
  performance_insights_kms_key_id       = aws_kms_key.main.arn
  performance_insights_retention_period = 7
  monitoring_interval                   = 60
  monitoring_role_arn                   = aws_iam_role.tracking_db_monitoring[0].arn
  copy_tags_to_snapshot                 = true
}

resource "aws_iam_role" "tracking_db_monitoring" {
  count = local.tracking_count

  name                 = "${local.name}-tracking-db-monitoring"
  assume_role_policy   = data.aws_iam_policy_document.tracking_db_monitoring_trust.json
  permissions_boundary = aws_iam_policy.boundary.arn
}

data "aws_iam_policy_document" "tracking_db_monitoring_trust" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["monitoring.rds.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role_policy" "tracking_db_monitoring" {
  count = local.tracking_count

  name   = "enhanced-monitoring"
  role   = aws_iam_role.tracking_db_monitoring[0].id
  policy = data.aws_iam_policy_document.tracking_db_monitoring.json
}

# What AmazonRDSEnhancedMonitoringRole grants, written out: the RDSOSMetrics log group only.
data "aws_iam_policy_document" "tracking_db_monitoring" {
  statement {
    sid       = "CreateOsMetricsLogGroup"
    actions   = ["logs:CreateLogGroup", "logs:PutRetentionPolicy"]
    resources = ["arn:${local.partition}:logs:${var.region}:${local.account_id}:log-group:RDS*"]
  }

  statement {
    sid       = "WriteOsMetrics"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams", "logs:GetLogEvents"]
    resources = ["arn:${local.partition}:logs:${var.region}:${local.account_id}:log-group:RDS*:log-stream:*"]
  }
}

# Artefact store: a bucket of its own, whose objects only the server's task role may read or write.

resource "aws_s3_bucket" "tracking" {
  #checkov:skip=CKV_AWS_144:Cross-region replication doubles storage cost; versioning keeps every artefact version for recovery in-region.
  count = local.tracking_count

  bucket        = local.tracking_bucket
  force_destroy = false
}

resource "aws_s3_bucket_ownership_controls" "tracking" {
  count = local.tracking_count

  bucket = aws_s3_bucket.tracking[0].id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "tracking" {
  count = local.tracking_count

  bucket                  = aws_s3_bucket.tracking[0].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_server_side_encryption_configuration" "tracking" {
  count = local.tracking_count

  bucket = aws_s3_bucket.tracking[0].id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.main.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_versioning" "tracking" {
  count = local.tracking_count

  bucket = aws_s3_bucket.tracking[0].id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "tracking" {
  count = local.tracking_count

  bucket = aws_s3_bucket.tracking[0].id

  rule {
    id     = "expire-replaced-versions"
    status = "Enabled"

    filter {}

    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_retention_days
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  depends_on = [aws_s3_bucket_versioning.tracking]
}

resource "aws_s3_bucket_logging" "tracking" {
  count = local.tracking_count

  bucket        = aws_s3_bucket.tracking[0].id
  target_bucket = aws_s3_bucket.logs.id
  target_prefix = "s3/${local.tracking_bucket}/"

  # S3 refuses a logging target whose policy does not yet grant this bucket's logs (storage.tf).
  depends_on = [aws_s3_bucket_policy.logs]
}

resource "aws_s3_bucket_notification" "tracking" {
  count = local.tracking_count

  bucket      = aws_s3_bucket.tracking[0].id
  eventbridge = true
}

resource "aws_s3_bucket_policy" "tracking" {
  count = local.tracking_count

  bucket = aws_s3_bucket.tracking[0].id
  policy = data.aws_iam_policy_document.tracking_bucket[0].json

  depends_on = [aws_s3_bucket_public_access_block.tracking]
}

data "aws_iam_policy_document" "tracking_bucket" {
  count = local.tracking_count

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = ["arn:${local.partition}:s3:::${local.tracking_bucket}", "arn:${local.partition}:s3:::${local.tracking_bucket}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }

  statement {
    sid       = "DenyTlsOlderThan12"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = ["arn:${local.partition}:s3:::${local.tracking_bucket}", "arn:${local.partition}:s3:::${local.tracking_bucket}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "NumericLessThan"
      variable = "s3:TlsVersion"
      values   = ["1.2"]
    }
  }

  statement {
    sid       = "OnlyTheTrackingServerTouchesArtefacts"
    effect    = "Deny"
    actions   = ["s3:GetObject*", "s3:PutObject*", "s3:DeleteObject*", "s3:RestoreObject"]
    resources = ["arn:${local.partition}:s3:::${local.tracking_bucket}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "ArnNotEquals"
      variable = "aws:PrincipalArn"
      values   = ["arn:${local.partition}:iam::${local.account_id}:role/${local.name}-tracking-task"]
    }
  }
}

# ECS: a cluster of its own (the server outlives any deployment of the model), execution and task roles.

resource "aws_ecs_cluster" "tracking" {
  count = local.tracking_count

  name = "${local.name}-tracking"

  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

resource "aws_cloudwatch_log_group" "tracking" {
  count = local.tracking_count

  name              = "/ecs/${local.name}-tracking"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.main.arn
}

resource "aws_iam_role" "tracking_execution" {
  count = local.tracking_count

  name                 = "${local.name}-tracking-execution"
  assume_role_policy   = data.aws_iam_policy_document.tracking_ecs_trust.json
  permissions_boundary = aws_iam_policy.boundary.arn
}

data "aws_iam_policy_document" "tracking_ecs_trust" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role_policy" "tracking_execution" {
  count = local.tracking_count

  name   = "pull-images-read-secrets-write-logs"
  role   = aws_iam_role.tracking_execution[0].id
  policy = data.aws_iam_policy_document.tracking_execution[0].json
}

data "aws_iam_policy_document" "tracking_execution" {
  count = local.tracking_count

  statement {
    sid       = "RegistryLogin"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  # The two images, when mirrored to ECR, live in this account's (or the registry account's) repositories.
  statement {
    sid       = "PullMirroredImages"
    actions   = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
    resources = ["arn:${local.partition}:ecr:${var.region}:${local.registry_account_id}:repository/*"]
  }

  statement {
    sid       = "WriteTaskLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["arn:${local.partition}:logs:${var.region}:${local.account_id}:log-group:/ecs/${local.name}-tracking:*"]
  }

  # The database password RDS keeps, and the proxy's client and cookie secrets: read by ECS at task start only.
  statement {
    sid     = "ReadTheServersSecrets"
    actions = ["secretsmanager:GetSecretValue"]
    resources = [
      aws_rds_cluster.tracking[0].master_user_secret[0].secret_arn,
      var.tracking_oidc.client_secret_arn,
      var.tracking_oidc.cookie_secret_arn,
    ]
  }

  statement {
    sid       = "DecryptTheDatabaseSecret"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.main.arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["secretsmanager.${var.region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "tracking_task" {
  count = local.tracking_count

  name                 = "${local.name}-tracking-task"
  assume_role_policy   = data.aws_iam_policy_document.tracking_ecs_trust.json
  permissions_boundary = aws_iam_policy.boundary.arn
}

resource "aws_iam_role_policy" "tracking_task" {
  count = local.tracking_count

  name   = "read-write-artefacts"
  role   = aws_iam_role.tracking_task[0].id
  policy = data.aws_iam_policy_document.tracking_task[0].json
}

data "aws_iam_policy_document" "tracking_task" {
  count = local.tracking_count

  statement {
    sid       = "ListArtefacts"
    actions   = ["s3:ListBucket"]
    resources = ["arn:${local.partition}:s3:::${local.tracking_bucket}"]
  }

  statement {
    sid       = "ReadWriteArtefacts"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = ["arn:${local.partition}:s3:::${local.tracking_bucket}/*"]
  }

  statement {
    sid       = "EncryptDecryptArtefacts"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.main.arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${var.region}.amazonaws.com"]
    }
  }
}

# The task: an allow-list writer (the CI subjects, into a scratch volume), MLflow on 127.0.0.1, OAuth2-proxy on 4180.

resource "aws_ecs_task_definition" "tracking" {
  count = local.tracking_count

  family                   = "${local.name}-tracking"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.tracking_task_cpu
  memory                   = var.tracking_task_memory
  execution_role_arn       = aws_iam_role.tracking_execution[0].arn
  task_role_arn            = aws_iam_role.tracking_task[0].arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  volume {
    name = "config"
  }

  volume {
    name = "tmp"
  }

  container_definitions = jsonencode([
    {
      # OAuth2-proxy names a bearer token's session by its subject: the allow-list holds the CI subjects let in.
      name                   = "allowed-subjects"
      image                  = var.tracking_server_image
      essential              = false
      readonlyRootFilesystem = true
      user                   = "10001:10001"
      command                = ["python", "-c", "import os, pathlib; pathlib.Path('/config/allowed-subjects').write_text(os.environ['ALLOWED_SUBJECTS'] + '\\n')"]
      environment            = [{ name = "ALLOWED_SUBJECTS", value = join("\n", local.tracking_ci_subjects) }]
      mountPoints            = [{ sourceVolume = "config", containerPath = "/config", readOnly = false }]
      linuxParameters        = { capabilities = { drop = ["ALL"] } }
      logConfiguration = {
        logDriver = "awslogs"
        options   = { awslogs-group = "/ecs/${local.name}-tracking", awslogs-region = var.region, awslogs-stream-prefix = "init" }
      }
    },
    {
      name                   = "mlflow"
      image                  = var.tracking_server_image
      essential              = true
      readonlyRootFilesystem = true
      user                   = "10001:10001"
      command = [
        "mlflow", "server", "--host", "127.0.0.1", "--port", tostring(local.tracking_mlflow_port), "--workers", "2",
        "--backend-store-uri", "postgresql://mlflow@${try(aws_rds_cluster.tracking[0].endpoint, "")}:${local.tracking_db_port}/mlflow?sslmode=require",
        "--artifacts-destination", "s3://${local.tracking_bucket}/artifacts", "--serve-artifacts",
      ]
      environment = [
        { name = "AWS_DEFAULT_REGION", value = var.region },
        { name = "HOME", value = "/tmp" },
        { name = "MLFLOW_DISABLE_TELEMETRY", value = "true" },
      ]
      # libpq reads the password from PGPASSWORD: it never appears in the command or the task definition.
      secrets     = [{ name = "PGPASSWORD", valueFrom = "${try(aws_rds_cluster.tracking[0].master_user_secret[0].secret_arn, "")}:password::" }]
      mountPoints = [{ sourceVolume = "tmp", containerPath = "/tmp", readOnly = false }]
      healthCheck = {
        # A real connection: after RDS rotates the password this fails, and ECS starts a task with the new one.
        command     = ["CMD", "python", "-c", "import psycopg2; psycopg2.connect(host='${try(aws_rds_cluster.tracking[0].endpoint, "")}', dbname='mlflow', user='mlflow', sslmode='require', connect_timeout=5).close()"]
        interval    = 60
        timeout     = 10
        retries     = 3
        startPeriod = 60
      }
      linuxParameters = { initProcessEnabled = true, capabilities = { drop = ["ALL"] } }
      logConfiguration = {
        logDriver = "awslogs"
        options   = { awslogs-group = "/ecs/${local.name}-tracking", awslogs-region = var.region, awslogs-stream-prefix = "mlflow" }
      }
    },
    {
      name                   = "oauth2-proxy"
      image                  = var.tracking_proxy_image
      essential              = true
      readonlyRootFilesystem = true
      user                   = "65532:65532"
      portMappings           = [{ containerPort = local.tracking_proxy_port, protocol = "tcp" }]
      command = concat(
        [
          "--http-address=0.0.0.0:${local.tracking_proxy_port}",
          "--upstream=http://127.0.0.1:${local.tracking_mlflow_port}/",
          "--provider=oidc",
          "--oidc-issuer-url=${try(var.tracking_oidc.issuer, "")}",
          "--client-id=${try(var.tracking_oidc.client_id, "")}",
          "--redirect-url=https://${local.tracking_host}/oauth2/callback",
          "--reverse-proxy=true",
          "--cookie-secure=true",
          "--cookie-expire=8h",
          "--skip-provider-button=true",
          "--pass-host-header=false",
          # API clients (MLflow's REST API) get 401 instead of a login redirect.
          "--api-route=^/api/",
          "--api-route=^/ajax-api/",
          # GitHub Actions: its OIDC ID token for this audience, and only the allow-listed subjects.
          "--skip-jwt-bearer-tokens=true",
          "--extra-jwt-issuers=${local.tracking_ci_issuer}=${local.tracking_audience}",
          "--authenticated-emails-file=/config/allowed-subjects",
          "--silence-ping-logging=true",
        ],
        [for domain in try(var.tracking_oidc.email_domains, []) : "--email-domain=${domain}"],
      )
      secrets = [
        { name = "OAUTH2_PROXY_CLIENT_SECRET", valueFrom = try(var.tracking_oidc.client_secret_arn, "") },
        { name = "OAUTH2_PROXY_COOKIE_SECRET", valueFrom = try(var.tracking_oidc.cookie_secret_arn, "") },
      ]
      mountPoints     = [{ sourceVolume = "config", containerPath = "/config", readOnly = true }]
      dependsOn       = [{ containerName = "allowed-subjects", condition = "SUCCESS" }, { containerName = "mlflow", condition = "START" }]
      linuxParameters = { initProcessEnabled = true, capabilities = { drop = ["ALL"] } }
      logConfiguration = {
        logDriver = "awslogs"
        options   = { awslogs-group = "/ecs/${local.name}-tracking", awslogs-region = var.region, awslogs-stream-prefix = "oauth2-proxy" }
      }
    },
  ])

  lifecycle {
    precondition {
      condition     = var.tracking_server_image != "" && var.tracking_proxy_image != ""
      error_message = "tracking_oidc is set, so this stack creates the tracking server: set tracking_server_image and tracking_proxy_image (both by digest) in envs/${var.environment}.tfvars."
    }
  }
}

# Load balancer: HTTPS only (no port 80 at all), in the public subnets.

resource "aws_lb" "tracking" {
  #checkov:skip=CKV2_AWS_28:OAuth2-proxy authenticates every request before MLflow sees it, and artefact uploads are larger than the 8 KB a load balancer's WAF inspects, so its body rules would block them.
  count = local.tracking_count

  name                       = local.tracking_name
  load_balancer_type         = "application"
  internal                   = false
  subnets                    = aws_subnet.public[*].id
  security_groups            = [aws_security_group.tracking_alb[0].id]
  drop_invalid_header_fields = true
  desync_mitigation_mode     = "strictest"
  enable_deletion_protection = local.is_production
  # Artefact uploads of large models take longer than the default minute.
  idle_timeout = 300

  access_logs {
    bucket = aws_s3_bucket.logs.id
    # The log bucket accepts load-balancer logs under alb/ only (storage.tf); file names carry the balancer's name.
    prefix  = "alb"
    enabled = true
  }

  depends_on = [aws_s3_bucket_policy.logs]
}

resource "aws_lb_target_group" "tracking" {
  #checkov:skip=CKV_AWS_378:TLS ends at the load balancer; the hop to OAuth2-proxy stays in private subnets only the load balancer's security group can reach.
  count = local.tracking_count

  name                 = local.tracking_name
  port                 = local.tracking_proxy_port
  protocol             = "HTTP"
  target_type          = "ip"
  vpc_id               = aws_vpc.main.id
  deregistration_delay = 30

  health_check {
    path                = "/ping"
    port                = "traffic-port"
    matcher             = "200"
    interval            = 15
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }
}

resource "aws_lb_listener" "tracking_https" {
  count = local.tracking_count

  load_balancer_arn = aws_lb.tracking[0].arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = var.tracking_certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.tracking[0].arn
  }

  lifecycle {
    precondition {
      condition     = var.tracking_certificate_arn != ""
      error_message = "tracking_oidc is set, so this stack creates the tracking server: set tracking_certificate_arn (an ACM certificate of tracking_domain in this region)."
    }
  }
}

resource "aws_ecs_service" "tracking" {
  count = local.tracking_count

  name                              = "${local.name}-tracking"
  cluster                           = aws_ecs_cluster.tracking[0].id
  task_definition                   = aws_ecs_task_definition.tracking[0].arn
  launch_type                       = "FARGATE"
  platform_version                  = "LATEST"
  desired_count                     = local.is_production ? 2 : 1
  health_check_grace_period_seconds = 120
  enable_ecs_managed_tags           = true
  propagate_tags                    = "SERVICE"
  wait_for_steady_state             = true

  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = aws_subnet.tracking[*].id
    security_groups  = [aws_security_group.tracking_task[0].id]
    assign_public_ip = false
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.tracking[0].arn
    container_name   = "oauth2-proxy"
    container_port   = local.tracking_proxy_port
  }

  depends_on = [aws_lb_listener.tracking_https, aws_route_table_association.tracking, aws_rds_cluster_instance.tracking]
}

# CI applies this file: the backend store's API, and the secret RDS creates for the master password (named rds!...).
resource "aws_iam_role_policy" "ci_tracking_server" {
  count = local.tracking_count

  name   = "tracking-server"
  role   = aws_iam_role.ci.id
  policy = data.aws_iam_policy_document.ci_tracking_server[0].json
}

data "aws_iam_policy_document" "ci_tracking_server" {
  #checkov:skip=CKV_AWS_356:Only the read-only RDS Describe and ListTagsForResource calls are on "*": engine versions and orderable instance options have no resource-level permissions.
  count = local.tracking_count

  statement {
    sid     = "ManageTheBackendStore"
    actions = ["rds:*"]
    resources = [
      "arn:${local.partition}:rds:${var.region}:${local.account_id}:cluster:${local.name}-tracking",
      "arn:${local.partition}:rds:${var.region}:${local.account_id}:db:${local.name}-tracking-*",
      "arn:${local.partition}:rds:${var.region}:${local.account_id}:subgrp:${local.name}-tracking",
      "arn:${local.partition}:rds:${var.region}:${local.account_id}:cluster-pg:${local.name}-tracking",
      "arn:${local.partition}:rds:${var.region}:${local.account_id}:cluster-snapshot:${local.name}-tracking-*",
    ]
  }

  statement {
    sid       = "DescribeRds"
    actions   = ["rds:Describe*", "rds:ListTagsForResource"]
    resources = ["*"]
  }

  statement {
    sid       = "TheMasterPasswordSecretRdsCreates"
    actions   = ["secretsmanager:CreateSecret", "secretsmanager:TagResource", "secretsmanager:DeleteSecret", "secretsmanager:DescribeSecret", "secretsmanager:RotateSecret"]
    resources = ["arn:${local.partition}:secretsmanager:${var.region}:${local.account_id}:secret:rds!*"]
  }

  statement {
    sid       = "RdsMonitoringRole"
    actions   = ["iam:CreateServiceLinkedRole"]
    resources = ["arn:${local.partition}:iam::${local.account_id}:role/aws-service-role/rds.amazonaws.com/*"]

    condition {
      test     = "StringEquals"
      variable = "iam:AWSServiceName"
      values   = ["rds.amazonaws.com"]
    }
  }
}

output "tracking_uri" {
  description = "MLFLOW_TRACKING_URI of every client (the repository variable of the same name); \"\" until the server exists."
  value       = local.tracking_uri
}

output "tracking_audience" {
  description = "Audience of the GitHub OIDC token CI sends as its bearer token (.github/actions/tracking-auth, repository variable MLFLOW_TRACKING_AUDIENCE)."
  value       = local.tracking_audience
}

output "tracking_alb_dns_name" {
  description = "DNS name of the tracking server's load balancer: point tracking_domain at it (CNAME or Route 53 alias)."
  value       = try(aws_lb.tracking[0].dns_name, "")
}

output "tracking_database_secret_arn" {
  description = "Secrets Manager secret (kept and rotated by RDS) with the backend store's master password, for restores and break-glass access."
  value       = try(aws_rds_cluster.tracking[0].master_user_secret[0].secret_arn, "")
}
