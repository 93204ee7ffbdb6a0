# tracking_server = self_hosted: the shared MLflow server (tracking_server.tf), planned against a mocked AWS provider
# with one environment's values (`make infra-test` runs this file with -var-file=envs/<environment>.tfvars).

mock_provider "aws" {
  source = "./tests/mocks"
}

# What only an apply knows, fixed so the task definition (which names them) can be read in a plan.
override_resource {
  target          = aws_rds_cluster.tracking
  override_during = plan
  values = {
    endpoint = "test-tracking.cluster-abcdefghijkl.us-east-1.rds.amazonaws.com"
    master_user_secret = [{
      secret_arn    = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!cluster-0123-AbCdEf" # pragma: allowlist secret
      kms_key_id    = "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000"
      secret_status = "active" # pragma: allowlist secret
    }]
  }
}

override_resource {
  target          = aws_lb.tracking
  override_during = plan
  values = {
    arn        = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/test-mlflow/0123456789abcdef"
    arn_suffix = "app/test-mlflow/0123456789abcdef" # pragma: allowlist secret
    dns_name   = "test-mlflow-123456789.us-east-1.elb.amazonaws.com"
  }
}

override_resource {
  target          = aws_lb_target_group.tracking
  override_during = plan
  values = {
    arn = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/test-mlflow/0123456789abcdef"
  }
}

override_resource {
  target          = aws_iam_policy.boundary
  override_during = plan
  values = {
    arn = "arn:aws:iam::123456789012:policy/test-ci-boundary"
  }
}

variables {
  tracking_oidc = {
    issuer            = "https://login.example.com"
    client_id         = "mlflow"
    client_secret_arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:mlflow-oidc-client-AbCdEf" # pragma: allowlist secret
    cookie_secret_arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:mlflow-oidc-cookie-AbCdEf" # pragma: allowlist secret
    email_domains     = ["example.com"]
  }
  tracking_server_image          = "123456789012.dkr.ecr.us-east-1.amazonaws.com/mlflow@sha256:c0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ff"
  tracking_proxy_image           = "123456789012.dkr.ecr.us-east-1.amazonaws.com/oauth2-proxy@sha256:c0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ff"
  tracking_certificate_arn       = "arn:aws:acm:us-east-1:123456789012:certificate/00000000-0000-0000-0000-000000000000"
  tracking_domain                = "mlflow.example.com"
  tracking_allowed_ingress_cidrs = ["0.0.0.0/0"]
}

run "existing_server_creates_nothing" {
  command = plan

  variables {
    tracking_server_url = "https://mlflow.example.com/"
  }

  assert {
    condition = (
      length(aws_rds_cluster.tracking) == 0 && length(aws_ecs_service.tracking) == 0 && length(aws_lb.tracking) == 0
      && length(aws_s3_bucket.tracking) == 0 && length(aws_nat_gateway.tracking) == 0 && length(aws_subnet.tracking) == 0
      && length(aws_ecs_task_definition.tracking) == 0 && length(aws_iam_role.tracking_task) == 0
      && length(aws_iam_role_policy.ci_tracking_server) == 0 && length(aws_vpc_security_group_ingress_rule.tracking_alb_https) == 0
    )
    error_message = "with tracking_server_url set, the stack must create no tracking server resource"
  }

  assert {
    condition     = output.tracking_uri == "https://mlflow.example.com" && output.tracking_audience == "https://mlflow.example.com"
    error_message = "tracking_uri and tracking_audience must name the organisation's server (without a trailing slash)"
  }
}

run "nothing_before_the_identity_provider_is_set" {
  command = plan

  variables {
    tracking_oidc = null
  }

  assert {
    condition     = length(aws_rds_cluster.tracking) == 0 && length(aws_ecs_service.tracking) == 0 && output.tracking_uri == ""
    error_message = "the tracking server is planned before tracking_oidc is set"
  }
}

run "creates_the_server" {
  command = plan

  assert {
    condition = (
      length(aws_rds_cluster.tracking) == 1 && length(aws_rds_cluster_instance.tracking) == 1
      && length(aws_ecs_service.tracking) == 1 && length(aws_lb.tracking) == 1 && length(aws_s3_bucket.tracking) == 1
      && length(aws_nat_gateway.tracking) == 1 && length(aws_subnet.tracking) == var.az_count
    )
    error_message = "the server, its database, load balancer, bucket and network are not all planned"
  }

  assert {
    condition     = output.tracking_uri == "https://mlflow.example.com" && output.tracking_audience == output.tracking_uri
    error_message = "tracking_uri must be https://<tracking_domain>, and CI's token audience that URI"
  }

  assert {
    condition = (
      aws_lb_listener.tracking_https[0].protocol == "HTTPS" && aws_lb_listener.tracking_https[0].port == 443
      && startswith(aws_lb_listener.tracking_https[0].ssl_policy, "ELBSecurityPolicy-TLS13")
      && !aws_lb.tracking[0].internal && aws_lb.tracking[0].drop_invalid_header_fields
    )
    error_message = "the tracking server must be reached over HTTPS (TLS 1.2+) only"
  }

  assert {
    condition     = aws_lb_target_group.tracking[0].port == 4180 && [for lb in aws_ecs_service.tracking[0].load_balancer : lb.container_name] == ["oauth2-proxy"]
    error_message = "the load balancer must send traffic to OAuth2-proxy, never to MLflow directly"
  }

  assert {
    condition = (
      alltrue([for network in aws_ecs_service.tracking[0].network_configuration : network.assign_public_ip == false])
      && aws_rds_cluster_instance.tracking[0].publicly_accessible == false
    )
    error_message = "the server task and its database must have no public address"
  }
}

run "backend_store_is_encrypted_and_protected_in_production" {
  command = plan

  assert {
    condition = (
      aws_rds_cluster.tracking[0].storage_encrypted && aws_rds_cluster.tracking[0].engine == "aurora-postgresql"
      && aws_rds_cluster.tracking[0].manage_master_user_password
      && aws_rds_cluster.tracking[0].master_password == null
    )
    error_message = "the backend store must be encrypted Aurora PostgreSQL whose password RDS keeps in Secrets Manager"
  }

  assert {
    condition = (
      aws_rds_cluster.tracking[0].deletion_protection == (var.environment == "production")
      && aws_rds_cluster.tracking[0].skip_final_snapshot == (var.environment != "production")
      && aws_rds_cluster.tracking[0].backup_retention_period == (var.environment == "production" ? 35 : 7)
      && aws_lb.tracking[0].enable_deletion_protection == (var.environment == "production")
    )
    error_message = "production needs deletion protection, a final snapshot and 35 days of backups (staging: none, 7 days)"
  }

  assert {
    condition = (
      aws_rds_cluster.tracking[0].serverlessv2_scaling_configuration[0].min_capacity == 0.5
      && aws_rds_cluster.tracking[0].serverlessv2_scaling_configuration[0].max_capacity == var.tracking_db_max_capacity
      && aws_rds_cluster_instance.tracking[0].instance_class == "db.serverless"
    )
    error_message = "the backend store must be Aurora Serverless v2 within its capacity bounds"
  }
}

run "ci_token_audience_and_subjects" {
  command = plan

  assert {
    condition = contains(
      [for container in jsondecode(aws_ecs_task_definition.tracking[0].container_definitions) : container.command if container.name == "oauth2-proxy"][0],
      "--extra-jwt-issuers=https://token.actions.githubusercontent.com=https://mlflow.example.com"
    )
    error_message = "OAuth2-proxy must accept GitHub's OIDC tokens only for the tracking server's audience"
  }

  assert {
    condition = alltrue([
      for flag in ["--skip-jwt-bearer-tokens=true", "--authenticated-emails-file=/config/allowed-subjects", "--email-domain=example.com", "--upstream=http://127.0.0.1:5000/"] :
      contains([for container in jsondecode(aws_ecs_task_definition.tracking[0].container_definitions) : container.command if container.name == "oauth2-proxy"][0], flag)
    ])
    error_message = "OAuth2-proxy must take bearer tokens, restrict them to the allow-listed subjects and people to the organisation's domains"
  }

  assert {
    condition = (
      [for container in jsondecode(aws_ecs_task_definition.tracking[0].container_definitions) : container.environment[0].value if container.name == "allowed-subjects"][0]
      == "repo:${var.github_repository}:environment:${var.environment}\nrepo:${var.github_repository}:ref:refs/heads/main"
    )
    error_message = "only this repository's jobs in this environment and on main may use a bearer token"
  }

  assert {
    condition = alltrue([
      for container in jsondecode(aws_ecs_task_definition.tracking[0].container_definitions) :
      container.readonlyRootFilesystem && container.user != "0" && !startswith(container.user, "0:")
    ])
    error_message = "every container of the tracking task must run as a non-root user on a read-only filesystem"
  }

  assert {
    condition = (
      contains([for container in jsondecode(aws_ecs_task_definition.tracking[0].container_definitions) : container.command if container.name == "mlflow"][0], "--serve-artifacts")
      && contains([for container in jsondecode(aws_ecs_task_definition.tracking[0].container_definitions) : container.command if container.name == "mlflow"][0], "127.0.0.1")
    )
    error_message = "MLflow must serve the artefacts itself (clients need no bucket rights) and listen on 127.0.0.1 only"
  }
}

run "only_the_server_touches_the_artefacts" {
  command = plan

  assert {
    condition = anytrue([
      for statement in data.aws_iam_policy_document.tracking_bucket[0].statement :
      statement.effect == "Deny" && contains(statement.actions, "s3:GetObject*") && contains(statement.actions, "s3:PutObject*")
      && anytrue([for condition in statement.condition : condition.variable == "aws:PrincipalArn" && length(condition.values) == 1 && contains(condition.values, "arn:aws:iam::123456789012:role/${var.project}-${var.environment}-tracking-task")])
    ])
    error_message = "the artefact bucket must deny its objects to every principal but the tracking server's task role"
  }

  assert {
    condition = (
      aws_s3_bucket_public_access_block.tracking[0].block_public_policy && aws_s3_bucket_public_access_block.tracking[0].restrict_public_buckets
      && one([for rule in aws_s3_bucket_server_side_encryption_configuration.tracking[0].rule : rule.apply_server_side_encryption_by_default[0].sse_algorithm]) == "aws:kms"
    )
    error_message = "the artefact bucket must be private and KMS-encrypted"
  }

  assert {
    condition = alltrue([
      for statement in data.aws_iam_policy_document.tracking_task[0].statement :
      alltrue([for action in statement.actions : !strcontains(action, "*")])
    ])
    error_message = "the server's task role must grant named actions, never wildcards"
  }
}
