output "vpc_id" {
  description = "ID of the VPC."
  value       = aws_vpc.this.id
}

output "vpc_cidr_block" {
  description = "IPv4 CIDR of the VPC (what the data stores' security groups admit)."
  value       = aws_vpc.this.cidr_block
}

output "public_subnet_ids" {
  description = "Public subnet IDs, in the order of availability_zones."
  value       = [for zone in var.availability_zones : aws_subnet.public[zone].id]
}

output "private_subnet_ids" {
  description = "Private subnet IDs, in the order of availability_zones (EKS nodes, RDS, ElastiCache, MSK)."
  value       = [for zone in var.availability_zones : aws_subnet.private[zone].id]
}

output "nat_gateway_ids" {
  description = "Zone -> NAT gateway ID (empty without NAT)."
  value       = { for zone, nat in aws_nat_gateway.this : zone => nat.id }
}
