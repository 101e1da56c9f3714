function(input) {
  console.log("adding", input.num1, "and", input.num2);
  return { sum: input.num1 + input.num2 };
}
