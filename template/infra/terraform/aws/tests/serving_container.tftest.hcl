# serving = container: the ECS Fargate service behind the load balancer, planned against a mocked AWS provider with
# one environment's values (`make infra-test` runs this file with -var-file=envs/<environment>.tfvars).

mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  certificate_arn = "arn:aws:acm:us-east-1:123456789012:certificate/00000000-0000-0000-0000-000000000000"
}

run "first_apply_creates_no_serving_resources" {
  command = plan

  variables {
    image_tag = ""
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
